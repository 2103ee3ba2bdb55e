"""``python -m fromax --check``: does this install's compiled engine run, and agree with the reference?

Meant for a fresh install (a wheel in a venv with no compiler): it finds the kernels, traces a few
optimizers' steps with ``backend="ffi"`` on JAX's default device, checks the compiled step really
calls a ``fromax_`` kernel, and compares three steps against the pure-JAX reference
(``backend="xla"``). It imports nothing beyond fromax's runtime dependencies.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO

import jax
import jax.numpy as jnp
import numpy as np

import fromax
from fromax import _ffi

# (name, factory(backend)) with default-ish hyperparameters; f32 and bf16 leaves, one scalar.
CHECKED: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("fromage", lambda b: fromax.fromage(backend=b)),
    ("adamw", lambda b: fromax.adamw(1e-3, backend=b)),
    ("lamb", lambda b: fromax.lamb(1e-3, backend=b)),
    ("dog", lambda b: fromax.dog(backend=b)),
)
# Relative to each leaf's scale: the kernels and the reference differ by rounding order only.
RTOL = {jnp.dtype(jnp.float32): 1e-5, jnp.dtype(jnp.bfloat16): 2.0**-7}


def _example():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "w": jax.random.normal(k1, (33, 17), jnp.float32),
        "b": jax.random.normal(k2, (300,), jnp.float32).astype(jnp.bfloat16),
        "s": jnp.asarray(0.5, jnp.float32),
    }
    grads = jax.tree.map(lambda p, k: jax.random.normal(k, p.shape, p.dtype), params,
                         dict(zip(("w", "b", "s"), jax.random.split(k3, 3))))
    return params, grads


def _run(tx, params, grads, steps: int = 3):
    step = jax.jit(lambda p, s, g: fromax.step(tx, g, s, p))
    state = tx.init(params)
    text = step.lower(params, state, grads).as_text()
    for i in range(steps):
        params, state = step(params, state, jax.tree.map(lambda g: g * (1 + i), grads))
    return params, text


def check(file: TextIO | None = None) -> bool:
    """Run the self-check, print one line per optimizer, and return whether everything passed."""
    out = file or sys.stdout
    platform = jax.default_backend()
    if not _ffi.use_kernels("auto"):  # registers the CUDA engine on a GPU, as a first step would
        errors = "; ".join(f"{k}: {v}" for k, v in _ffi._LOAD_ERRORS.items()) or "none"
        print(f"FAIL: no fromax kernels for the default platform {platform!r} (load errors: {errors})", file=out)
        return False
    params, grads = _example()
    ok = True
    for name, make in CHECKED:
        got, text = _run(make("ffi"), params, grads)
        want, _ = _run(make("xla"), params, grads)
        calls = text.count("custom_call @fromax_")
        worst = 0.0
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            g32, w32 = np.asarray(g, np.float32), np.asarray(w, np.float32)
            scale = max(float(np.max(np.abs(w32))), 1e-30)
            worst = max(worst, float(np.max(np.abs(g32 - w32))) / scale / RTOL[jnp.dtype(w.dtype)])
        passed = calls > 0 and worst <= 1.0
        ok &= passed
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {platform} kernels called ({calls} fromax_ custom calls "
              f"in the step), 3 steps vs the reference: {worst:.2f} of the tolerance", file=out)
    return ok
