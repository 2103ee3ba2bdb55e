"""Every registered functor of the elementwise engine (reduce, update, per-tensor fused), kernel
against its pure-JAX math (``fromax._functors``), with no per-functor test code: a new functor is
tested by registering it.

Leaves cover the engine's paths: a scalar, a size-0 leaf, small leaves packed into one work item,
a leaf cut into several chunks (more than 64K elements); f32/bf16/f16 streams (f64 in a process
with x64 enabled, see ``test_f64_functors_in_an_x64_process``); an update's two kernel modes (the
fused step's new values, and increments with the state in place); and ``segments > 1`` (a vmapped
call)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fromax import _contract, _engine
from fromax._functors import FUNCTORS
from helpers import passes_in_an_x64_process

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
    rows = _engine.rows(functor.name, len(streams[0]), _engine.coeff_dtype(streams[0]), **dict(zip(functor.columns, cols, strict=True)))
    if functor.is_reduce:
        return [_engine.reduce(functor.name, rows, streams, kernels=kernels, fold=False)]
    if functor.is_fused:
        sums, lists = _engine.fused(functor.name, rows, streams, kernels=kernels)
        return [sums], lists
    return _engine.update(functor.name, rows, streams, kernels=kernels, delta=delta)


def _compare(functor, got, want, dtype_name: str, what: str, streams):
    if functor.is_fused:  # its reduce's sums, then its update's results
        _compare(functor.parts[0], got[0], want[0], dtype_name, what + " sums", streams)
        _compare(functor.parts[1], got[1], want[1], dtype_name, what, streams)
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
            # A result x' = x + dx (the new parameter, a moment's update) rounds at the scale of the
            # input x it replaces, however much smaller x' is (Fromage's p_bound cap can shrink W).
            x64 = np.asarray(streams[functor.replaces[j]][i], np.float64)
            scale = max(np.max(np.abs(r64)), np.max(np.abs(x64))) if r64.size else 0.0
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
    _compare(functor, kernel(cols, streams), math(cols, streams), dtype_name, f"{name} {dtype_name}", streams)


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
        _compare(functor, jax.tree.map(lambda x: x[b], got), want, "f32", f"{name} member {b}", member[1])


def test_the_kernel_library_was_built_from_this_contract():
    """The CPU library's compiled contract (each functor's type, streams, sums or results and
    columns by name, as cpp/functors compiled them from functors.h) is this package's, and the
    layout each C++ type declares matches the Python functor: the parameter stream an update
    writes."""
    from fromax import _fromax_cpu

    assert _contract.compiled_table(_fromax_cpu) == _contract.TABLE
    for target, (kind, *_, layout) in _fromax_cpu.functors().items():
        f = FUNCTORS[target.removeprefix("fromax_")]
        if kind == "update":
            assert layout[3] == f.replaces[0], target
        if kind == "fused":
            assert layout == (f.n_coeffs,), target


def _fake_library(change):
    """A stand-in for a kernel library whose functors() is the real one with ``change`` applied."""
    from fromax import _fromax_cpu

    table = dict(_fromax_cpu.functors())
    change(table)
    return type("Library", (), {"functors": staticmethod(lambda: table)})


@pytest.mark.parametrize("change,named", [
    (lambda t: t.__setitem__("fromax_adamw", t["fromax_adamw"][:4] + ("(b1, b2, eps, eps_root, cm, cg, bc2, wd, lr)",) + t["fromax_adamw"][5:]), "adamw"),
    (lambda t: t.pop("fromax_momo"), "momo"),
    (lambda t: t.__setitem__("fromax_cocob", t["fromax_cocob"][:3] + ("(p, grad_sum, max_grad, abs_grad_sum, scale)",) + t["fromax_cocob"][4:]), "cocob"),
], ids=["swapped_columns", "missing_target", "renamed_results"])
def test_a_library_built_from_another_contract_is_refused(change, named):
    """Columns in another order, a target missing, results renamed: the library's kernels would
    read rows Python did not build for them, so registering it fails, naming the functor."""
    with pytest.raises(RuntimeError, match=f"differ in .*{named}"):
        _contract.check_compiled(_fake_library(change), "test")


def test_a_library_whose_types_disagree_with_their_lists_is_refused():
    def change(t):
        kind, cpp_type, inputs, outputs, columns, parts, layout = t["fromax_adamw"]
        t["fromax_adamw"] = (kind, cpp_type, inputs, outputs, columns, parts, (layout[0], layout[1], layout[2] - 1, *layout[3:]))

    with pytest.raises(RuntimeError, match="AdamW declares"):
        _contract.check_compiled(_fake_library(change), "test")


def test_the_contract_parser_rejects_malformed_tables():
    good = _contract.PATH.read_text()
    _contract.parse(good)
    bad_result = good.replace("UPDATE(axpby, Axpby, (g, p), (p), (a, b))", "UPDATE(axpby, Axpby, (g, p), (w), (a, b))")
    with pytest.raises(RuntimeError, match="axpby must name the input stream"):
        _contract.parse(bad_result)
    bad_twin = good.replace("UPDATE(adamw_pre, AdamWPre, adamw)", "REDUCE(adamw_pre, AdamWPre, adamw)")
    with pytest.raises(RuntimeError, match="twin adamw_pre"):
        _contract.parse(bad_twin)
    bad_fused = good.replace("(wd, lr, trust_coefficient, eps,", "(lr, wd, trust_coefficient, eps,")
    with pytest.raises(RuntimeError, match="fused lars's columns must start with lars_norms's"):
        _contract.parse(bad_fused)
    with pytest.raises(RuntimeError, match="not a name"):
        _contract.parse(good.replace("(lr, p_bound, p0_norm, min_norm)", "(lr, p_bound, 0, min_norm)"))


def test_prologue_twins_append_the_prologue_columns():
    for f in FUNCTORS.values():
        if f.entry.base is not None:
            base = FUNCTORS[f.entry.base]
            assert (f.inputs, f.outputs, f.columns) == (base.inputs, base.outputs, base.columns + _contract.PROLOGUE_COLUMNS)


def test_rows_are_built_by_name():
    """A functor's rows name every column of its contract, no more: a missing or unknown column,
    or rows built for another functor, fail before anything runs, naming the columns."""
    adam = dict(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, cm=1.0, cg=0.0, bc2=1.0)
    rows = _engine.rows("adamw", 2, np.float32, **adam, wd=0.0, lr=1e-3)
    assert rows.names == FUNCTORS["adamw"].columns and rows.named()["lr"] == 1e-3
    with pytest.raises(ValueError, match=r"missing \['wd'\], unknown \[\]"):
        _engine.rows("adamw", 2, np.float32, **adam, lr=1e-3)
    with pytest.raises(ValueError, match=r"missing \[\], unknown \['weight_decay'\]"):
        _engine.rows("adamw", 2, np.float32, **adam, lr=1e-3, wd=0.0, weight_decay=0.0)
    x = [[jnp.ones(3), jnp.ones(2)]]
    with pytest.raises(ValueError, match="fromax_norm takes the columns"):
        _engine.reduce("norm", _engine.rows("lars_norms", 2, np.float32, wd=0.0), x, kernels=True)


def test_math_must_return_its_contract_names():
    """The JAX math returns its results by name; a result missing or out of the contract's order
    is an error, not a silently misplaced tensor."""
    f = FUNCTORS["momo"]
    c, x = [0.5, 0.1, 0.2], [jnp.ones(2)] * 3
    assert len(f.apply(c, x)) == 2
    import dataclasses

    swapped = dataclasses.replace(f, math=lambda c, x: dict(reversed(list(f.math(c, x).items()))))
    with pytest.raises(AssertionError, match=r"returns \('m', 'p'\), its contract says \('p', 'm'\)"):
        swapped.apply(c, x)


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="this is the x64 run itself")
def test_f64_functors_in_an_x64_process():
    """The f64 group (x64 must be on before JAX starts): this module's f64 cases, in a subprocess."""
    passes_in_an_x64_process(__file__, "test_functor_kernel_matches_its_math", len(CASES))
