"""Where fromax's step shows up in a profile: capture a `jax.profiler` trace of a few training steps
and print the trace events that belong to fromax (its FFI custom calls are named `fromax_*`).

    python examples/profile.py [--logdir /tmp/fromax-profile]

The trace is also written for TensorBoard / Perfetto (`perfetto_trace.json.gz` under the log
directory): open it at https://ui.perfetto.dev to see the step on the timeline.
"""

import argparse
import collections
import functools
import glob
import gzip
import json
import os
import tempfile

import jax
import jax.numpy as jnp

import fromax


def init_mlp(key, sizes=(64, 256, 256, 10)):
    keys = jax.random.split(key, len(sizes) - 1)
    return {f"layer{i}": {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
            for i, (k, m, n) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def loss_fn(params, x, y):
    h = x
    for i in range(len(params)):
        h = h @ params[f"layer{i}"]["w"] + params[f"layer{i}"]["b"]
        h = jax.nn.relu(h) if i < len(params) - 1 else h
    return jnp.mean((h - y) ** 2)


tx = fromax.fromage(learning_rate=0.01)


@functools.partial(jax.jit, donate_argnums=(0, 1))
def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    params, opt_state = fromax.step(tx, grads, opt_state, params)
    return params, opt_state, loss


def trace_events(logdir: str) -> list[dict]:
    files = glob.glob(os.path.join(logdir, "**", "*perfetto_trace.json.gz"), recursive=True)
    if not files:
        raise RuntimeError(f"no perfetto trace under {logdir}")
    with gzip.open(max(files, key=os.path.getmtime), "rt") as f:
        trace = json.load(f)
    return trace["traceEvents"] if isinstance(trace, dict) else trace


def main(logdir: str | None = None, steps: int = 5) -> dict[str, float]:
    """Profile `steps` training steps; returns {fromax event name: total microseconds}."""
    logdir = logdir or tempfile.mkdtemp(prefix="fromax-profile-")
    params = init_mlp(jax.random.PRNGKey(0))
    opt_state = tx.init(params)
    x = jax.random.normal(jax.random.PRNGKey(1), (128, 64))
    y = jax.random.normal(jax.random.PRNGKey(2), (128, 10))
    params, opt_state, loss = train_step(params, opt_state, x, y)  # compile outside the trace
    loss.block_until_ready()

    with jax.profiler.trace(logdir, create_perfetto_trace=True):
        for _ in range(steps):
            params, opt_state, loss = train_step(params, opt_state, x, y)
        loss.block_until_ready()

    totals: dict[str, float] = collections.defaultdict(float)
    counts: dict[str, int] = collections.Counter()
    for event in trace_events(logdir):
        name = str(event.get("name", ""))
        if "fromax" in name:
            totals[name] += float(event.get("dur", 0.0))
            counts[name] += 1
    print(f"trace written under {logdir}")
    print(f"fromax events in {steps} training steps (name: count, total time):")
    for name in sorted(totals):
        print(f"  {name:40s} {counts[name]:4d}  {totals[name]:9.1f} us")
    return dict(totals)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    main(args.logdir, args.steps)
