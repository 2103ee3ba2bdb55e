"""Norms at the ends of the f32 range: fromax against the plain sum of squares and optax.

    python examples/extreme_norms.py

A tensor of tiny elements (5e-20) or huge ones (1e27) has a representable 2-norm, but its f32 sum of
squares underflows to 0 or overflows to inf. fromax's norms sum the squares in f64 (kernels) or after
an exact power-of-two scaling (the pure-JAX reference), so Fromage follows the paper's rule on a
tensor of 1e-20 and DoG stays finite on a parameter of 1e27. Prints one line per case; main()
returns the numbers.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

import fromax


def _steps(tx, params, grads, n):
    state = tx.init(params)
    for _ in range(n):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params["w"])


def main() -> dict[str, dict[str, object]]:
    tiny = {"w": jnp.full((1000,), 5e-20, jnp.float32)}  # norm 5e-20 * sqrt(1000) = 1.5811e-18
    huge = {"w": jnp.array([1e27, -3e26], jnp.float32)}  # norm 1.0440307e27
    results = {
        "norm of 1,000 x 5e-20": {
            "fromax": float(fromax.per_tensor_norms(tiny)["w"]),
            "fromax xla": float(fromax.per_tensor_norms(tiny, backend="xla")["w"]),
            "jnp.linalg.norm": float(jnp.linalg.norm(tiny["w"])),
        },
        "norm of [1e27, -3e26]": {
            "fromax": float(fromax.per_tensor_norms(huge)["w"]),
            "fromax xla": float(fromax.per_tensor_norms(huge, backend="xla")["w"]),
            "sqrt(sum(x*x))": float(jnp.sqrt(jnp.sum(huge["w"] ** 2))),
        },
    }
    # Fromage on W = 1e-20, g = 1: the paper's rule moves W by a relative lr (W_new ~ 0.99 W).
    w, g = {"w": jnp.full((4,), 1e-20, jnp.float32)}, {"w": jnp.ones((4,), jnp.float32)}
    results["fromage(0.01), W = 1e-20, g = 1: new W"] = {
        "fromax": float(_steps(fromax.fromage(0.01), w, g, 1)[0]),
        "optax.fromage": float(_steps(optax.fromage(0.01), w, g, 1)[0]),
        "paper's rule": float((1e-20 - 0.01 * 1e-20) / np.sqrt(1 + 0.01**2)),
    }
    # DoG from x0 of 1e27: |x0| overflows a plain f32 sum of squares.
    x0, grad = {"w": jnp.array([1e27, -2e26, 5e26], jnp.float32)}, {"w": jnp.array([1.0, -2.0, 0.5], jnp.float32)}
    results["dog(), x0 = [1e27, -2e26, 5e26], 3 steps"] = {
        "fromax": _steps(fromax.dog(), x0, grad, 3).tolist(),
        "optax.contrib.dog": _steps(optax.contrib.dog(), x0, grad, 3).tolist(),
    }
    return results


if __name__ == "__main__":
    for case, row in main().items():
        print(case)
        for who, value in row.items():
            print(f"    {who:18s} {value}")
