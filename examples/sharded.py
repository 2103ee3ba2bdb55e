"""Sharded training with fromax: FSDP-style parameters over a device mesh, nothing special to write.

    python examples/sharded.py            # 8 virtual CPU devices if JAX sees only one

Every weight matrix is split over the mesh axis "fsdp" along its first dimension (biases are
replicated); the batch is split over the same axis. ``fromax.step`` runs inside the jitted train
step as on one device: each device updates its own shards in place and the devices exchange only the
per-tensor partial norms (one small all-reduce). The same code runs on several hosts after
``jax.distributed.initialize()``: the mesh then spans every host's devices.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "jax" not in sys.modules:
    # A CPU-only machine: ask XLA for 8 host devices (must happen before jax is imported).
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import fromax  # noqa: E402


def init_mlp(key, sizes):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        params[f"w{i}"] = jax.random.normal(sub, (n_in, n_out)) / jnp.sqrt(n_in)
        params[f"b{i}"] = jnp.zeros(n_out)
    return params


def loss_fn(params, x, y):
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n_layers - 1:
            h = jnp.tanh(h)
    return jnp.mean((h - y) ** 2)


def main(steps: int = 60, devices: int | None = None):
    """Trains a small MLP regression with Fromage on a 1-D mesh; returns (first loss, last loss,
    compiled HLO text of the optimizer step alone)."""
    n = devices or jax.device_count()
    mesh = jax.make_mesh((n,), ("fsdp",))
    params = init_mlp(jax.random.key(0), [16, 64, 64, 8])
    # FSDP: weight matrices split along their first dimension, biases replicated.
    specs = {k: P("fsdp", None) if k.startswith("w") else P() for k in params}
    params = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in params.items()}

    x = jax.random.normal(jax.random.key(1), (8 * n, 16))
    y = jnp.sin(x[:, :8] * 2.0)
    data = NamedSharding(mesh, P("fsdp", None))
    x, y = jax.device_put(x, data), jax.device_put(y, data)

    tx = fromax.fromage(learning_rate=0.01)
    state = tx.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, state = fromax.step(tx, grads, state, params)
        return params, state, loss

    # The optimizer step on its own (grads shaped and sharded like params). The forward and backward
    # passes of an FSDP model gather weights by design; the optimizer step never needs to.
    opt_step = jax.jit(functools.partial(fromax.step, tx))
    hlo = opt_step.lower(params, state, params).compile().as_text()
    losses = []
    for _ in range(steps):
        params, state, loss = train_step(params, state, x, y)
        losses.append(float(loss))
    for k, v in params.items():
        assert v.sharding.is_equivalent_to(NamedSharding(mesh, specs[k]), v.ndim), (k, v.sharding)
    return losses[0], losses[-1], hlo


if __name__ == "__main__":
    first, last, hlo = main()
    print(f"{jax.device_count()} devices; loss {first:.4f} -> {last:.4f}; optimizer step collectives: "
          f"{hlo.count('all-reduce(')} all-reduce (per-tensor norms), {hlo.count('all-gather(')} all-gather")
