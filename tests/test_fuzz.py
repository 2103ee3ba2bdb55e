"""Property-based fuzzing (hypothesis, pinned in the test extra, derandomized: the same bounded set
of examples on every run).

Random pytrees of 1-40 leaves (shapes from () to 4-D, and (65537,)), f32, bf16 or f16, each leaf's
parameters and gradients at their own scale from 0 and denormals to 1e30, optionally a NaN or an
infinity in one entry of the parameters, the first gradients or the state, random hyperparameters
for the main optimizers, 1-5 steps. For every optimizer with an optax counterpart:

- fromax's kernels (``backend="ffi"``) against its pure-JAX reference (``backend="xla"``), through the
  optax contract and the fused step: the same NaN and infinite entries, the finite ones close to
  the reference's (the reference's contract step is the oracle);
- fromax against optax where their math is the same: f32 leaves at ordinary scales (optax's f32 sum
  of squares underflows on tiny tensors and overflows on huge ones, where fromax's norms do not:
  README, "Norms over the whole float range"). Fromage's learning rate stays below 1: at lr = 1 a
  scalar leaf lands on 0 up to one ulp, and the next step's zero-norm branch then depends on that ulp.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optax import contrib

import fromax
from family_cases import CASES

SHAPES = [(), (1,), (3,), (5, 2), (2, 1, 3), (2, 2, 1, 3), (0,), (65537,)]
# 1e-40 is an f32 denormal (XLA's CPU backend reads it as 0, the kernels alike); bf16 and f16 round
# the scales they cannot hold to 0 or inf, which is part of what is tested.
SCALES = [0.0, 1e-40, 1e-30, 1e-20, 1e-3, 1.0, 30.0, 1e20, 1e30]
ORDINARY = {0.0, 1e-3, 1.0, 30.0}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
# Kernels vs reference, of each leaf's largest finite magnitude: f32 rounding over a few steps; for
# bf16/f16 a stored result may round to the neighbouring value, and the next step starts from it.
RTOL = {"float32": 1e-4, "bfloat16": 2.0**-5, "float16": 2.0**-7}


def _tunable(name, h):
    """(fromax maker by backend, optax maker or None) for hyperparameters ``h``."""
    if name == "fromage":
        p_bound = h["p_bound"]
        return (lambda b: fromax.fromage(h["lr"], p_bound=p_bound, backend=b),
                None if p_bound is not None else (lambda: optax.fromage(h["lr"], min_norm=0.0)))
    if name == "adamw":
        kw = dict(b1=h["b1"], b2=h["b2"], eps=h["eps"], weight_decay=h["wd"])
        return lambda b: fromax.adamw(h["lr"], **kw, backend=b), lambda: optax.adamw(h["lr"], **kw)
    if name == "lamb":
        kw = dict(b1=h["b1"], b2=h["b2"], eps=h["eps"], weight_decay=h["wd"])
        return lambda b: fromax.lamb(h["lr"], **kw, backend=b), lambda: optax.lamb(h["lr"], **kw)
    if name == "lars":
        kw = dict(weight_decay=h["wd"], trust_coefficient=h["trust"], momentum=h["b1"])
        return lambda b: fromax.lars(h["lr"], **kw, backend=b), lambda: optax.lars(h["lr"], **kw)
    if name == "novograd":
        kw = dict(b1=h["b1"], b2=h["b2"], weight_decay=h["wd"])
        return lambda b: fromax.novograd(h["lr"], **kw, backend=b), lambda: optax.novograd(h["lr"], **kw)
    assert name == "dog"
    kw = dict(init_step=("heuristic", h["r_eps"]), weight_decay=h["wd"])
    return lambda b: fromax.dog(**kw, backend=b), lambda: contrib.dog(**kw)


TUNABLE = ["fromage", "adamw", "lamb", "lars", "novograd", "dog"]
FIXED = sorted(n for n, (_, theirs, _) in CASES.items() if theirs is not None)


@st.composite
def hyperparameters(draw):
    return {
        "lr": draw(st.sampled_from([1e-4, 1e-3, 1e-2, 0.1, 0.5])),
        "b1": draw(st.sampled_from([0.0, 0.5, 0.9])),
        "b2": draw(st.sampled_from([0.9, 0.999])),
        "eps": draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
        "wd": draw(st.sampled_from([0.0, 1e-4, 0.1])),
        "trust": draw(st.sampled_from([1e-3, 1.0])),
        "r_eps": draw(st.sampled_from([1e-6, 1e-2])),
        "p_bound": draw(st.sampled_from([None, None, 1.0, 2.0])),
    }


@st.composite
def problems(draw):
    """(name, dtype, params, grads per step, poison, hyperparameters)."""
    name = draw(st.sampled_from(TUNABLE + FIXED))
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    n = draw(st.integers(1, 40))
    shapes = [draw(st.sampled_from(SHAPES[:-1])) for _ in range(n)]
    if draw(st.booleans()) and draw(st.booleans()):  # one long leaf (a multi-chunk tensor) in a quarter
        shapes[draw(st.integers(0, n - 1))] = SHAPES[-1]
    p_scales = [draw(st.sampled_from(SCALES)) for _ in range(n)]
    g_scales = [draw(st.sampled_from(SCALES)) for _ in range(n)]
    steps = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    as_dtype = lambda x: jnp.asarray(x, DTYPES[dtype])  # noqa: E731
    params = {f"p{i:02d}": as_dtype(rng.standard_normal(s) * c) for i, (s, c) in enumerate(zip(shapes, p_scales))}
    grads = [{k: as_dtype(rng.standard_normal(s) * c) for k, s, c in zip(params, shapes, g_scales)} for _ in range(steps)]
    poison = None
    sized = [i for i, s in enumerate(shapes) if np.prod(s, dtype=int) > 0]
    if sized and draw(st.booleans()):
        i = draw(st.sampled_from(sized))
        poison = (draw(st.sampled_from(["params", "grads", "state"])), draw(st.sampled_from([np.nan, np.inf, -np.inf])),
                  f"p{i:02d}", draw(st.integers(0, int(np.prod(shapes[i])) - 1)))
    ordinary = dtype == "float32" and set(p_scales) <= ORDINARY and set(g_scales) <= ORDINARY
    return name, dtype, params, grads, poison, draw(hyperparameters()), ordinary


def _poisoned(tree, poison, key_filter):
    """``tree`` with the poison's value at its flat index of every leaf whose path names the poisoned
    parameter (the parameter itself, or its moments in a state)."""
    if poison is None or not key_filter:
        return tree
    _, value, key, index = poison

    def put(path, x):
        if not any(getattr(k, "key", None) == key for k in path):
            return x
        if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.floating) or x.size <= index:
            return x
        return x.reshape(-1).at[index].set(value).reshape(x.shape)

    return jax.tree_util.tree_map_with_path(put, tree)


def _run(tx, run, params, grads, needs_value, poison):
    """Steps of ``tx``: optax's (``run`` None; jitted), or fromax's contract or fused step."""
    where = poison[0] if poison else None
    p = _poisoned(params, poison, where == "params")
    state = tx.init(p)
    state = _poisoned(state, poison, where == "state")
    dtype = jax.tree.leaves(params)[0].dtype
    for i, g in enumerate(grads):
        g = _poisoned(g, poison, where == "grads" and i == 0)
        extra = {"value": jnp.asarray(1.0 + i, dtype)} if needs_value else {}
        if run is not None and run[1]:
            p, state = fromax.step(tx, g, state, p, **extra)
        else:
            update = jax.jit(tx.update) if run is None else tx.update
            u, state = update(g, state, p, **extra)
            p = optax.apply_updates(p, u)
    return {k: np.asarray(v, np.float64) for k, v in p.items()}


def _agree(got, want, rtol, what):
    """Leaf by leaf: the same NaN, +inf and -inf entries; finite entries within ``rtol`` of the leaf's
    largest finite magnitude in ``want``."""
    for k in want:
        g, w = got[k], want[k]
        for kind, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
            assert np.array_equal(test(g), test(w)), f"{what}: {kind} entries of {k} differ: at {np.flatnonzero(test(g) != test(w))[:5]}"
        finite = np.isfinite(w)
        scale = np.max(np.abs(w[finite]), initial=0.0)
        np.testing.assert_allclose(g[finite], w[finite], rtol=0, atol=rtol * max(scale, np.finfo(np.float64).tiny), err_msg=f"{what}, leaf {k}")


def check(name, dtype, params, grads, poison, h, ordinary):
    if name in TUNABLE:
        make, theirs = _tunable(name, h)
        needs_value = False
    else:
        make, theirs_fixed, needs_value = CASES[name]
        theirs = theirs_fixed
    what = f"{name} {dtype} shapes {[tuple(v.shape) for v in params.values()]} poison {poison} h {h if name in TUNABLE else 'fixed'}"
    reference = _run(make("xla"), ("xla", False), params, grads, needs_value, poison)
    for run in (("xla", True), ("ffi", False), ("ffi", True)):
        got = _run(make(run[0]), run, params, grads, needs_value, poison)
        _agree(got, reference, RTOL[dtype], f"{what}: {run[0]} {'fused' if run[1] else 'contract'} vs the reference")
    if ordinary and theirs is not None:
        _agree(reference, _run(theirs(), None, params, grads, needs_value, poison), 5e-5, f"{what}: the reference vs optax")


@settings(max_examples=40, derandomize=True, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problems())
def test_kernels_reference_and_optax_agree_on_random_problems(problem):
    check(*problem)
