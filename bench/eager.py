"""Eager (un-jitted) optimizer steps on a small MLP: fromax against its optax counterpart.

    python bench/eager.py [--optimizers adamw,lamb,...] [--reps 50]

Every optimizer of `step_time.py --family` (and Fromage): `tx.update` + `optax.apply_updates`
called outside `jax.jit`, for fromax's optimizer and for optax's, and fromax's `fromax.step`; the
MLP of `python -m fromax.demo` (64-256-256-10, 6 tensors). Calls interleaved after two warm-up
steps, medians of ms per step; the compilations during the timed steps are counted per path (fromax
compiles a step once per optimizer configuration, fromax._eager).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax
import step_time as st

COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kwargs: COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
)


def mlp_params(sizes=(64, 256, 256, 10)) -> dict:
    rng = np.random.default_rng(0)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32)
        params[f"b{i}"] = jnp.zeros(b, jnp.float32)
    return params


def eager_run(tx, fused: bool, params: dict, compiles: list):
    """``() -> seconds`` of one eager step; the state and params carry over between calls; each
    call appends the number of compilations it caused to ``compiles``."""
    grads = jax.tree.map(lambda p: 0.01 * jnp.ones_like(p), params)
    carry = {"p": params, "s": tx.init(params)}
    value = jnp.float32(1.0)

    def run():
        before = len(COMPILES)
        t0 = time.perf_counter()
        if fused:
            carry["p"], carry["s"] = fromax.step(tx, grads, carry["s"], carry["p"], value=value)
        else:
            u, carry["s"] = optax.with_extra_args_support(tx).update(grads, carry["s"], carry["p"], value=value)
            carry["p"] = optax.apply_updates(carry["p"], u)
        jax.block_until_ready(carry["p"])
        seconds = time.perf_counter() - t0
        compiles.append(len(COMPILES) - before)
        return seconds

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizers", default="")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args(argv)
    chosen = [o for o in args.optimizers.split(",") if o]
    params = mlp_params()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} host cores); kernels: {fromax.kernel_platforms()}")
    family = {"fromage": (fromax.fromage(0.01), optax.fromage(0.01)), **st.family()}
    rows = []
    for name, (ours, theirs) in family.items():
        if chosen and name.split(" ")[0] not in chosen:
            continue
        compiles = {"fromax update": [], "optax update": [], "fromax.step": []}
        runs = {"fromax update": eager_run(ours, False, params, compiles["fromax update"]),
                "optax update": eager_run(theirs, False, params, compiles["optax update"]),
                "fromax.step": eager_run(ours, True, params, compiles["fromax.step"])}
        for run in runs.values():  # warm up: the first steps compile
            run(), run()
        t = st.interleaved_ms(runs, args.reps)
        timed = {k: sum(v[2:]) for k, v in compiles.items()}  # after the two warm-up steps
        rows.append((name, t, timed))
        print(f"{name:42s} " + "  ".join(f"{k} {v:7.3f}" for k, v in t.items()) +
              f" ms  fromax / optax {t['fromax update'] / t['optax update']:.2f}x  compilations while timed: {timed}", flush=True)
    print("\n| optimizer | fromax tx.update + apply_updates (ms) | optax (ms) | fromax.step (ms) | fromax / optax "
          "| compilations while timed: fromax update / optax / fromax.step |")
    print("|---|---|---|---|---|---|")
    for name, t, timed in rows:
        print(f"| {name} | {t['fromax update']:.3f} | {t['optax update']:.3f} | {t['fromax.step']:.3f} | "
              f"{t['fromax update'] / t['optax update']:.2f}x | {timed['fromax update']} / {timed['optax update']} / {timed['fromax.step']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
