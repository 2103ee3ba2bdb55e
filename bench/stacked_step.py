"""Step time of ``stacked_axes``: stacked layers against the same layers as separate leaves.

    python bench/stacked_step.py [--layers 24] [--width 256] [--optimizers fromage,lamb] [--reps 30]

A stack of ``layers`` (width, width) kernels and (width,) biases (leaves of shape (layers, width,
width) and (layers, width)) beside an unstacked head, with the fused, jitted, donated ``fromax.step``
of each optimizer three ways: ``stacked_axes`` (per-layer quantities), the same layers as separate
leaves (the reference: the same math), and the stacked leaves without ``stacked_axes`` (one norm over
the stack: other math, the cost floor). Medians of interleaved repetitions (step_time.py's method);
ratios to the separate leaves. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_time as st  # noqa: E402

import fromax  # noqa: E402

OPTIMIZERS = {"fromage": lambda **kw: fromax.fromage(0.01, **kw), "lamb": lambda **kw: fromax.lamb(1e-3, **kw),
              "lars": lambda **kw: fromax.lars(0.1, **kw), "novograd": lambda **kw: fromax.novograd(1e-3, **kw)}


def _trees(layers: int, width: int):
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    stacked = {"blocks": {"w": jax.random.normal(k[0], (layers, width, width)), "b": jnp.zeros((layers, width))},
               "head": jax.random.normal(k[1], (width, 10))}
    separate = {"blocks": [{"w": stacked["blocks"]["w"][i], "b": stacked["blocks"]["b"][i]} for i in range(layers)],
                "head": stacked["head"]}
    return stacked, separate


def _run(tx, params):
    """``() -> seconds`` of one donated fused step; the donated inputs re-created outside the timing."""
    step = jax.jit(lambda g, p, s: fromax.step(tx, g, s, p), donate_argnums=(1, 2))
    grads = jax.tree.map(lambda x: 0.01 * x, params)
    compiled = step.lower(grads, params, tx.init(params)).compile()

    def run():
        p = st.copy_tree(params)
        s = tx.init(p)
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(grads, p, s))
        return time.perf_counter() - t0

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--optimizers", default="fromage,lamb")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args(argv)
    stacked, separate = _trees(args.layers, args.width)
    print(f"| optimizer | {args.layers} x ({args.width}, {args.width}) | stacked_axes | separate leaves | stacked, no stacked_axes |")
    print("|---|---|---|---|---|")
    results = {}
    for name in args.optimizers.split(","):
        make = OPTIMIZERS[name]
        runs = {"stacked_axes": _run(make(stacked_axes={"blocks": 0, "head": None}), stacked),
                "separate": _run(make(), separate), "plain": _run(make(), stacked)}
        ms = st.interleaved_ms(runs, args.reps)
        results[name] = ms
        ratio = {k: v / ms["separate"] for k, v in ms.items()}
        print(f"| {name} | ms (x separate) | {ms['stacked_axes']:.3f} ({ratio['stacked_axes']:.2f}x) | {ms['separate']:.3f} | "
              f"{ms['plain']:.3f} ({ratio['plain']:.2f}x) |")
    return results


if __name__ == "__main__":
    main()
