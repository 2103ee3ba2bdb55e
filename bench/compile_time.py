"""Compile time of a training loop's optimizer step as the leaf count grows: fromax vs optax.

    python bench/compile_time.py [--optimizers adamw,lamb,...] [--leaves 250,500,1000,2000,5000] [--timeout 600]

For each optimizer of `step_time.py --family` with an optax counterpart (the hypergradient ones have
none) and each leaf count n: n tensors of (1024,), and a jitted `lax.scan` of 10 steps whose
gradient is computed in the loop (step_time's in-graph loop), params and state donated. Three
steps: fromax's fused `fromax.step`, fromax through `tx.update` + `optax.apply_updates`, and
optax's counterpart through the same. Each is timed in a fresh subprocess with a wall-clock limit
(a compile past it is reported as "> limit"): tracing and lowering (`jax.jit(...).lower`), then
`.compile()`; the table shows both, as "total (compile)" seconds, the wait before a run's first
step. The growth exponent of each column is the slope of log(total) against log(n) between the
smallest and the largest leaf count that finished.
"""

from __future__ import annotations

import argparse
import math
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
tx = fromax_tx if {ours} else optax_tx
params = {{f"p{{i:05d}}": jnp.ones((1024,), jnp.float32) for i in range({n})}}
train = st.scan_loop(st.family_step_fn(tx, {fused}))
t0 = time.perf_counter()
lowered = jax.jit(train, donate_argnums=(0, 1)).lower(params, tx.init(params), st.scan_inputs(10))
t1 = time.perf_counter()
lowered.compile()
t2 = time.perf_counter()
print(f"{{t2 - t0:.2f}} {{t2 - t1:.2f}}")
"""

# column: (fromax's optimizer?, through the fused step?)
PATHS = {"fromax fused": (True, True), "fromax contract": (True, False), "optax": (False, False)}


def seconds(name: str, path: str, n: int, limit: float) -> tuple[float, float] | str:
    """(total, compile) seconds, or why there is no number."""
    ours, fused = PATHS[path]
    code = ONE.format(here=os.path.dirname(os.path.abspath(__file__)), name=name, ours=ours, fused=fused, n=n)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return f"> {limit:.0f}"
    except subprocess.CalledProcessError as e:
        return f"error: {e.stderr.strip().splitlines()[-1] if e.stderr.strip() else e.returncode}"
    total, compile_ = out.stdout.strip().splitlines()[-1].split()
    return float(total), float(compile_)


def exponent(points: list[tuple[int, object]]) -> str:
    done = [(n, t[0]) for n, t in points if isinstance(t, tuple)]
    if len(done) < 2 or done[0][0] == done[-1][0]:
        return "–"
    (n0, t0), (n1, t1) = done[0], done[-1]
    return f"{math.log(t1 / t0) / math.log(n1 / n0):.2f} ({n0}–{n1})"


def cell(t) -> str:
    return f"{t[0]:.1f} ({t[1]:.1f})" if isinstance(t, tuple) else t


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import step_time as st

    names = [n for n in st.family() if "(vs optax.adamw)" not in n]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizers", default=",".join(names))
    ap.add_argument("--leaves", default="250,500,1000,2000,5000")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per lower + compile")
    args = ap.parse_args(argv)
    leaves = [int(n) for n in args.leaves.split(",")]
    print("| optimizer | leaves | " + " | ".join(f"{p} total (compile), s" for p in PATHS) + " |")
    print("|---|---|" + "---|" * len(PATHS))
    growth = []
    for name in args.optimizers.split(","):
        points: dict[str, list] = {p: [] for p in PATHS}
        for n in leaves:
            row = {}
            for path in PATHS:
                earlier = points[path][-1][1] if points[path] else None
                # A step past the limit at fewer leaves is past it here too: not waited for again.
                row[path] = earlier if isinstance(earlier, str) and earlier.startswith(">") else seconds(name, path, n, args.timeout)
                points[path].append((n, row[path]))
            print(f"| {name} | {n} | " + " | ".join(cell(row[p]) for p in PATHS) + " |", flush=True)
        growth.append((name, {p: exponent(points[p]) for p in PATHS}))
    print("\nGrowth exponent of the total (slope of log seconds against log leaves):\n")
    print("| optimizer | " + " | ".join(PATHS) + " |")
    print("|---|" + "---|" * len(PATHS))
    for name, exps in growth:
        print(f"| {name} | " + " | ".join(exps[p] for p in PATHS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
