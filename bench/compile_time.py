"""Compile time of a training loop's optimizer step as the leaf count grows: fromax vs optax.

    python bench/compile_time.py [--optimizers momo,adamw] [--leaves 250,500,1000,2000] [--timeout 300]

For each optimizer of `step_time.py --family` and each leaf count n: n tensors of (1024,), and a
jitted `lax.scan` of 10 steps whose gradient is computed in the loop (step_time's in-graph loop),
params and state donated; the time is `.lower(...).compile()`, nothing run. Each compile runs in a
subprocess with a wall-clock limit, so one that takes too long is reported as "> limit" rather than
stalling the table. Compile time is what a user waits at the first step of every run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ONE = r"""
import sys, time
sys.path.insert(0, {here!r})
import jax
import jax.numpy as jnp
import step_time as st
fromax_tx, optax_tx = st.family()[{name!r}]
tx = fromax_tx if {fused} else optax_tx
params = {{f"p{{i:05d}}": jnp.ones((1024,), jnp.float32) for i in range({n})}}
train = st.scan_loop(st.family_step_fn(tx, {fused}))
lowered = jax.jit(train, donate_argnums=(0, 1)).lower(params, tx.init(params), st.scan_inputs(10))
t0 = time.perf_counter()
lowered.compile()
print(f"{{time.perf_counter() - t0:.2f}}")
"""


def compile_seconds(name: str, fused: bool, n: int, limit: float) -> str:
    code = ONE.format(here=os.path.dirname(os.path.abspath(__file__)), name=name, fused=fused, n=n)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return f"> {limit:.0f}"
    except subprocess.CalledProcessError as e:
        return f"error: {e.stderr.strip().splitlines()[-1] if e.stderr.strip() else e.returncode}"
    return out.stdout.strip().splitlines()[-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizers", default="momo,adamw")
    ap.add_argument("--leaves", default="250,500,1000,2000")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per compile")
    args = ap.parse_args(argv)
    leaves = [int(n) for n in args.leaves.split(",")]
    print("| optimizer | leaves | fromax compile (s) | optax compile (s) |\n|---|---|---|---|")
    for name in args.optimizers.split(","):
        skip_optax = False
        for n in leaves:
            ours = compile_seconds(name, True, n, args.timeout)
            # A compile past the limit at n is past it at any larger n: do not wait for it again.
            theirs = f"> {args.timeout:.0f} (at fewer leaves)" if skip_optax else compile_seconds(name, False, n, args.timeout)
            skip_optax = skip_optax or theirs.startswith(">")
            print(f"| {name} | {n} | {ours} | {theirs} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
