"""flax NNX: a training step through `nnx.Optimizer`, fromax against optax, on real model shapes.

    python bench/nnx_step.py [--presets resnet50,vit_b16,gpt2_small] [--optimizers adamw,lamb,fromage] [--reps 10]

A model whose `nnx.Param`s have a preset's shapes; one `nnx.jit` step computes the gradient in the
program (g = W * x + 1e-3, step_time.py's in-graph rule) and updates: `optimizer.update(model,
grads)` with `nnx.Optimizer(model, fromax.X)` and with `nnx.Optimizer(model, optax.X)` (nothing
donated, as nnx.jit does by default), and fromax's fused update recipe (examples/flax_nnx.py:
`fromax.step` in place of tx.update + apply_updates, model and optimizer donated). Calls
interleaved, medians of ms per step.
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import step_time as st
from chains import OPTIMIZERS, arguments

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from flax_nnx import fused_update  # noqa: E402



class Params(nnx.Module):
    """A module holding a preset's tensors as parameters."""

    def __init__(self, tree: dict):
        for name, value in tree.items():
            setattr(self, name, nnx.Param(value))


def gradients(model: Params, x):
    return jax.tree.map(lambda w: w * x + 1e-3, nnx.state(model, nnx.Param))


@nnx.jit
def standard_step(model, optimizer, x):
    optimizer.update(model, gradients(model, x))


@nnx.jit(donate_argnums=(0, 1))
def fused_step(model, optimizer, x):
    fused_update(optimizer, model, gradients(model, x))


def step_run(step, tree: dict, tx):
    model = Params(jax.tree.map(jnp.copy, tree))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    first = next(iter(tree))
    x = jnp.float32(1.0)

    def run():
        t0 = time.perf_counter()
        step(model, optimizer, x)
        jax.block_until_ready(getattr(model, first)[...])
        return time.perf_counter() - t0

    return run


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    presets = st.load_presets(args.shapes)
    rows = []
    for preset in args.presets.split(","):
        tree = st.make_tree(presets[preset], 0)
        reps = st.reps_for(sum(int(np.prod(s)) for s in presets[preset]), args.reps)
        for name in args.optimizers.split(","):
            ours, theirs = OPTIMIZERS[name]
            runs = {"fromax": step_run(standard_step, tree, ours()), "optax": step_run(standard_step, tree, theirs()),
                    "fromax fused": step_run(fused_step, tree, ours())}
            t = st.interleaved_ms(runs, reps)
            rows.append((preset, name, t))
            print(f"{preset:11s} {name:8s} " + "  ".join(f"{k} {v:8.2f}" for k, v in t.items()) +
                  f" ms  optax / fromax {t['optax'] / t['fromax']:.2f}x  optax / fused {t['optax'] / t['fromax fused']:.2f}x", flush=True)
    print("\n| preset | optimizer | nnx.Optimizer + fromax (ms) | nnx.Optimizer + optax (ms) | fromax fused recipe (ms) | optax / fromax | optax / fused |")
    print("|---|---|---|---|---|---|---|")
    for preset, name, t in rows:
        print(f"| {preset} | {name} | {t['fromax']:.2f} | {t['optax']:.2f} | {t['fromax fused']:.2f} | {t['optax'] / t['fromax']:.2f}x | "
              f"{t['optax'] / t['fromax fused']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
