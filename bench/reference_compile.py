"""Compile time of the fused Fromage step over a preset's tensors: fromax's kernels, fromax's pure-JAX
reference (``backend="xla"``: the fallback and the derivative rule), and optax.fromage.

    python bench/reference_compile.py [--presets many_small] [--repeat 2]

The reference's per-tensor norms are the part that grows with the number of tensors (see
``fromax._l2``): this is the check that it does not make the reference's program slow to compile.
Each repetition compiles every implementation once, in turn (alternated, so a busy machine affects
them alike), as ``jax.jit(step, donate_argnums=(1, 2)).lower(grads, params, state).compile()``;
the table shows each repetition's seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_time as st  # noqa: E402

import fromax  # noqa: E402


def implementations():
    """name: (transformation, through the fused ``fromax.step``?)"""
    return {
        "fromax kernels": (fromax.fromage(0.01), True),
        'fromax backend="xla"': (fromax.fromage(0.01, backend="xla"), True),
        "optax.fromage": (optax.fromage(0.01), False),
    }


def compile_seconds(tx, fused: bool, params) -> float:
    # (grads, params, state) -> (params, state): donated inputs pair with outputs in order.
    def step(grads, params, state):
        if fused:
            return fromax.step(tx, grads, state, params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    t0 = time.perf_counter()
    jax.jit(step, donate_argnums=(1, 2)).lower(params, params, tx.init(params)).compile()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="many_small")
    ap.add_argument("--shapes", default=st.DEFAULT_SHAPES)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    presets = st.load_presets(args.shapes)
    print(f"jax {jax.__version__}, fromax {fromax.__version__}")
    print("| preset | tensors | " + " | ".join(f"{name}, s" for name in implementations()) + " |")
    print("|---|---|" + "---|" * len(implementations()))
    for preset in args.presets.split(","):
        params = st.make_tree(presets[preset], 0)
        times = {name: [] for name in implementations()}
        for _ in range(args.repeat):
            for name, (tx, fused) in implementations().items():
                times[name].append(compile_seconds(tx, fused, params))
        cells = [", ".join(f"{t:.1f}" for t in ts) for ts in times.values()]
        print(f"| {preset} | {len(params)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
