"""Every registered functor of the elementwise engine (reduce, update, per-tensor fused), kernel
against its pure-JAX math (``fromax._functors``), with no per-functor test code: a new functor is
tested by registering it.

Leaves cover the engine's paths: a scalar, a size-0 leaf, small leaves packed into one work item,
a leaf cut into several chunks (more than 64K elements); f32/bf16/f16 streams (f64 in a process
with x64 enabled, see ``test_f64_functors_in_an_x64_process``); an update's two kernel modes (the
fused step's new values, and increments with the state in place); and ``segments > 1`` (a vmapped
call)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fromax import _engine
from fromax._functors import FUNCTORS

SHAPES = [(), (0,), (7,), (3, 5), (2, 2, 2), (70_001,)]
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16}
if jax.config.jax_enable_x64:
    DTYPES = {"f64": jnp.float64}
# A result's tolerance, relative to the largest magnitude of its tensor: the kernel and XLA compute
# the same formula per element, but XLA may rewrite it (a divide as a multiply by a reciprocal, a
# select for a max) and the per-tensor sums differ in order, so a few ulps of the accumulator,
# amplified by a short chain of operations (COCOB's: 5e-6), or one rounding of a 16-bit result.
RTOL = {"f32": 1e-5, "bf16": 2**-7, "f16": 2**-10, "f64": 1e-14}
SUM_RTOL = {"f32": 2e-5, "bf16": 2e-5, "f16": 2e-5, "f64": 1e-13}


def _inputs(functor, dtype, seed: int = 0, batch: int | None = None):
    """Coefficient columns (n,) in (0.1, 0.9) and streams: the gradient (stream 0) normal, the
    others in (0.5, 1.5) (state that some functors take the square root of)."""
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    n = len(SHAPES)
    acc = np.float64 if dtype == jnp.float64 else np.float32
    cols = [jnp.asarray(rng.uniform(0.1, 0.9, size=(*lead, n)), acc) for _ in range(functor.n_coeffs)]
    streams = []
    for k in range(functor.n_in):
        draw = (lambda s: rng.normal(size=s)) if k == 0 else (lambda s: rng.uniform(0.5, 1.5, size=s))
        streams.append([jnp.asarray(draw((*lead, *shape)), dtype) for shape in SHAPES])
    return cols, streams


def _run(functor, cols, streams, kernels: bool, delta):
    rows = _engine.rows(len(streams[0]), _engine.coeff_dtype(streams[0]), *cols)
    if functor.is_reduce:
        return [_engine.reduce(functor.name, rows, streams, kernels=kernels, fold=False)]
    if functor.is_fused:
        sums, lists = _engine.fused(functor.name, rows, streams, kernels=kernels)
        return [sums], lists
    return _engine.update(functor.name, rows, streams, kernels=kernels, delta=delta)


def _compare(functor, got, want, dtype_name: str, what: str):
    if functor.is_fused:  # its reduce's sums, then its update's results
        _compare(functor.parts[0], got[0], want[0], dtype_name, what + " sums")
        _compare(functor.parts[1], got[1], want[1], dtype_name, what)
        return
    if functor.is_reduce:
        # Sums of O(1) terms in another order: rounding grows with the terms summed (a tensor's
        # size), not with the sum, which cancels for signed terms.
        (k,), (r,) = got, want
        k64, r64 = np.asarray(k, np.float64), np.asarray(r, np.float64)
        sizes = np.array([np.prod(shape, dtype=np.int64) for shape in SHAPES], np.float64)[:, None]
        assert np.all(np.isfinite(r64)), what
        np.testing.assert_array_less(np.abs(k64 - r64), SUM_RTOL[dtype_name] * (np.abs(r64) + sizes / 20) + 1e-300, err_msg=what)
        return
    for j, (ks, rs) in enumerate(zip(got, want, strict=True)):
        for i, (k, r) in enumerate(zip(ks, rs, strict=True)):
            assert k.shape == r.shape and k.dtype == r.dtype, (what, j, i)
            k64, r64 = np.asarray(k, np.float64), np.asarray(r, np.float64)
            scale = np.max(np.abs(r64)) if r64.size else 0.0
            assert np.all(np.isfinite(r64)), (what, j, i)
            np.testing.assert_allclose(k64, r64, rtol=0, atol=RTOL[dtype_name] * max(scale, 1e-30) * 2, err_msg=f"{what}: result {j}, leaf {i}")


def _modes(functor):
    if functor.is_reduce:
        return [None]
    if functor.is_fused:
        return [_engine.Output.NEW]
    return [_engine.Output.NEW, _engine.Output.INCREMENT_STATE_IN_PLACE]


CASES = [(name, mode) for name, f in sorted(FUNCTORS.items()) for mode in _modes(f)]
IDS = [f"{name}-{'sums' if mode is None else mode.name.lower()}" for name, mode in CASES]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_functor_kernel_matches_its_math(name, mode, dtype_name):
    functor, dtype = FUNCTORS[name], DTYPES[dtype_name]
    cols, streams = _inputs(functor, dtype)
    kernel = jax.jit(lambda c, s: _run(functor, c, s, True, mode))
    math = jax.jit(lambda c, s: _run(functor, c, s, False, mode))
    hlo = kernel.lower(cols, streams).as_text()
    assert f"@{functor.target}" in hlo  # the kernel really ran, not the fallback
    _compare(functor, kernel(cols, streams), math(cols, streams), dtype_name, f"{name} {dtype_name}")


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_functor_kernel_batches_segments(name, mode):
    """Under jax.vmap a call is one kernel call with segments = batch, each member with its own
    coefficient rows: the same results as each member computed alone."""
    functor = FUNCTORS[name]
    cols, streams = _inputs(functor, jnp.float32, seed=1, batch=3)
    batched = jax.jit(jax.vmap(lambda c, s: _run(functor, c, s, True, mode)))
    hlo = batched.lower(cols, streams).as_text()
    assert hlo.count(f"@{functor.target}") == 1 and "segments = 3" in hlo
    got = batched(cols, streams)
    for b in range(3):
        member = jax.tree.map(lambda x: x[b], (cols, streams))
        want = jax.jit(lambda c, s: _run(functor, c, s, False, mode))(*member)
        _compare(functor, jax.tree.map(lambda x: x[b], got), want, "f32", f"{name} member {b}")


def _python_shape(f):
    if f.is_reduce:
        return ("reduce", f.n_in, f.n_sums, f.n_coeffs)
    if f.is_fused:
        r, u = f.parts
        return ("fused", f.n_in, f.n_out, f.n_coeffs, _python_shape(r), _python_shape(u))
    return ("update", f.n_in, f.n_out, f.n_coeffs, f.replaces[0], f.absolute)


def test_python_and_cpp_declare_the_same_functors():
    """Each functor's operand contract, as cpp/functors declares it and as _functors.py does:
    streams, sums or results, coefficient columns, the parameter stream, absolute or increment,
    and a fused functor's parts. A mismatch would feed a kernel the wrong columns silently."""
    from fromax import _fromax_cpu

    cpp = {name: tuple(tuple(x) if isinstance(x, tuple) else x for x in shape) for name, shape in _fromax_cpu.functors().items()}
    python = {f.target: _python_shape(f) for f in FUNCTORS.values()}
    assert cpp == python


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="this is the x64 run itself")
def test_f64_functors_in_an_x64_process():
    """The f64 group (x64 must be on before JAX starts): this module's f64 cases, in a subprocess."""
    env = dict(os.environ, JAX_ENABLE_X64="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "test_functor_kernel_matches_its_math"],
                         capture_output=True, text=True, env=env, cwd=os.path.dirname(__file__))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{len(CASES)} passed" in run.stdout, run.stdout[-500:]
