"""Gradient clipping in front of an optimizer: `optax.chain(optax.clip_by_global_norm(1.0), X)`.

    python bench/chains.py [--presets resnet50,vit_b16,gpt2_small] [--optimizers adamw,lamb,fromage] [--reps 10]

For each X in fromax's adamw, lamb and fromage, standalone steps (jitted, params and state donated,
calls interleaved, medians; see step_time.py): fromax's X alone through `fromax.step`; the chain
with fromax's X through `fromax.step` (the clip folded into X's kernels, fromax._prologue); the
chain with optax's X through `tx.update` + `optax.apply_updates`. Ratios: chain / X alone (the cost
of the clip) and optax chain / fromax chain.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np
import optax

import fromax
import step_time as st

OPTIMIZERS = {
    "adamw": (lambda: fromax.adamw(1e-3), lambda: optax.adamw(1e-3)),
    "lamb": (lambda: fromax.lamb(1e-3), lambda: optax.lamb(1e-3)),
    "fromage": (lambda: fromax.fromage(0.01), lambda: optax.fromage(0.01)),
}


def arguments(doc: str, argv) -> argparse.Namespace:
    """The command line of chains.py and nnx_step.py (printed header included)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=st.DEFAULT_SHAPES)
    ap.add_argument("--presets", default="resnet50,vit_b16,gpt2_small")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} host cores); kernels: {fromax.kernel_platforms()}")
    return args


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    presets = st.load_presets(args.shapes)
    rows = []
    for preset in args.presets.split(","):
        params, grads = st.make_tree(presets[preset], 0), st.make_tree(presets[preset], 1)
        reps = st.reps_for(sum(int(np.prod(s)) for s in presets[preset]), args.reps)
        for name in args.optimizers.split(","):
            ours, theirs = OPTIMIZERS[name]
            paths = {
                "alone": (ours(), True),
                "chain": (optax.chain(optax.clip_by_global_norm(1.0), ours()), True),
                "optax chain": (optax.chain(optax.clip_by_global_norm(1.0), theirs()), False),
            }
            runs = {}
            for key, (tx, fused) in paths.items():
                state = tx.init(params)
                compiled = st.compile_step(st.family_step_fn(tx, fused), params, state, grads, donate=True)
                runs[key] = st.standalone_run(compiled, params, state, grads, donate=True)
            t = st.interleaved_ms(runs, reps)
            rows.append((preset, name, t))
            print(f"{preset:11s} {name:8s} alone {t['alone']:8.2f}  chain {t['chain']:8.2f}  optax chain {t['optax chain']:8.2f} ms  "
                  f"chain / alone {t['chain'] / t['alone']:.2f}x  optax chain / chain {t['optax chain'] / t['chain']:.2f}x", flush=True)
    print("\n| preset | X | fromax X alone (ms) | chain(clip, fromax X) (ms) | chain(clip, optax X) (ms) | chain / X alone | optax chain / fromax chain |")
    print("|---|---|---|---|---|---|---|")
    for preset, name, t in rows:
        print(f"| {preset} | {name} | {t['alone']:.2f} | {t['chain']:.2f} | {t['optax chain']:.2f} | {t['chain'] / t['alone']:.2f}x | "
              f"{t['optax chain'] / t['chain']:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
