"""fromax against optax where they must agree in every corner: signatures (``optax.X`` -> ``fromax.X``
is a rename), non-finite values (a NaN or infinite norm poisons what it scales, exactly where it does
in optax), zero and denormal tensors, and float64 to rounding (every coefficient in the
accumulator dtype; the f64 cases run in an x64 subprocess). Every optimizer with an optax
counterpart, both backends, the optax contract and the fused step.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import fromax
from family_cases import CASES
from helpers import passes_in_an_x64_process

# The optax counterpart of every fromax optimizer with one.
COUNTERPARTS = {
    "adamw": optax.adamw, "lamb": optax.lamb, "lars": optax.lars, "novograd": optax.novograd, "fromage": optax.fromage,
    "dog": contrib.dog, "dowg": contrib.dowg, "prodigy": contrib.prodigy, "dadapt_adamw": contrib.dadapt_adamw,
    "cocob": contrib.cocob, "mechanize": contrib.mechanize, "momo": contrib.momo, "momo_adam": contrib.momo_adam,
    "schedule_free": contrib.schedule_free, "schedule_free_sgd": contrib.schedule_free_sgd,
    "schedule_free_adamw": contrib.schedule_free_adamw, "schedule_free_eval_params": contrib.schedule_free_eval_params,
}
# Defaults that differ on purpose (README, "Differences from optax"): fromage's learning rate has the
# paper's default, and min_norm=None is the paper's exact rule where optax clamps norms at 1e-6.
DIFFERENT_DEFAULTS = {("fromage", "learning_rate"), ("fromage", "min_norm")}


def _signature(fn):
    return inspect.signature(getattr(fn, "__wrapped__", fn)).parameters


@pytest.mark.parametrize("name", sorted(COUNTERPARTS))
def test_signature_is_a_superset_of_optax(name):
    """Every optax argument, at the same position and of the same kind, with the same default."""
    theirs, ours = _signature(COUNTERPARTS[name]), _signature(getattr(fromax, name))
    ours_list = list(ours)
    for k, (arg, p) in enumerate(theirs.items()):
        assert arg in ours, f"fromax.{name} lacks optax's argument {arg}"
        assert ours[arg].kind == p.kind, (name, arg, ours[arg].kind, p.kind)
        if p.kind == p.POSITIONAL_OR_KEYWORD:
            assert ours_list[k] == arg, f"fromax.{name}: {arg} is positional argument {ours_list.index(arg)}, optax's is {k}"
        if (name, arg) not in DIFFERENT_DEFAULTS:
            assert ours[arg].default == p.default, (name, arg, ours[arg].default, p.default)
    extra = [arg for arg in ours if arg not in theirs]
    assert all(ours[arg].default is not inspect.Parameter.empty for arg in extra), (name, extra)


def test_every_fromax_optimizer_with_a_counterpart_is_listed():
    optimizers = {n for n in fromax.__all__ if callable(getattr(fromax, n)) and hasattr(getattr(fromax, n), "fromax_factory")}
    assert optimizers - {"hypergradient_adamw", "auto_hypergradient_adamw"} == set(COUNTERPARTS) - {"schedule_free_eval_params"}


# ---- the same values, run by run ---------------------------------------------------------------------
PARITY = {name: (make, theirs, needs_value) for name, (make, theirs, needs_value) in CASES.items() if theirs is not None}
PARITY["fromage"] = (lambda b: fromax.fromage(0.1, backend=b), lambda: optax.fromage(0.1, min_norm=0.0), False)
PARITY["fromage_min_norm"] = (lambda b: fromax.fromage(0.1, 1e-6, backend=b), lambda: optax.fromage(0.1), False)
PARITY["clip_fromage"] = (
    lambda b: optax.chain(optax.clip_by_global_norm(1.0), fromax.fromage(0.1, backend=b)),
    lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.fromage(0.1, min_norm=0.0)),
    False,
)
PARITY["clip_lamb"] = (
    lambda b: optax.chain(optax.clip_by_global_norm(1.0), fromax.lamb(0.1, backend=b)),
    lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.lamb(0.1)),
    False,
)
RUNS = [(backend, fused) for backend in ("xla", "ffi") for fused in (False, True)]
RUN_IDS = [f"{b}-{'fused' if f else 'contract'}" for b, f in RUNS]


def _params(dtype, kind="normal"):
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    w = jax.random.normal(k[0], (4, 3), dtype)
    if kind == "zero":
        w = jnp.zeros((4, 3), dtype)
    elif kind == "denormal":
        w = w * jnp.asarray(np.finfo(np.dtype(dtype)).tiny / 64, dtype)
    return {"w": w, "b": jax.random.normal(k[1], (3,), dtype) * 0.1, "s": jnp.asarray(0.7, dtype)}


def _grads(i, dtype):
    k = jax.random.split(jax.random.PRNGKey(10 + i), 3)
    return {"w": jax.random.normal(k[0], (4, 3), dtype), "b": jax.random.normal(k[1], (3,), dtype), "s": jnp.asarray(0.3, dtype)}


def _poison(tree, value):
    """``tree`` with ``value`` at one entry of every leaf shaped like ``w`` (the weight, or its state)."""
    return jax.tree.map(lambda x: x.at[1, 2].set(value) if getattr(x, "shape", None) == (4, 3) else x, tree)


def _train(tx, run, poison, value, needs_value, params, dtype, steps=2):
    """``steps`` steps: optax's (run None, jitted as fromax's eager calls are), or fromax's contract
    or fused step; ``value`` put into the params, the first gradients or the state."""
    backend_fused = run
    p = _poison(params, value) if poison == "params" else params
    state = tx.init(p)
    if poison == "state":
        state = _poison(state, value)
    for i in range(steps):
        g = _grads(i, dtype)
        if poison == "grads" and i == 0:
            g = _poison(g, value)
        extra = {"value": jnp.asarray(1.0 + i, dtype)} if needs_value else {}
        if backend_fused is not None and backend_fused[1]:
            p, state = fromax.step(tx, g, state, p, **extra)
        else:
            update = tx.update if backend_fused is not None else jax.jit(tx.update)
            u, state = update(g, state, p, **extra)
            p = optax.apply_updates(p, u)
    return p


def _where_non_finite(tree):
    return {k: (np.isnan(np.asarray(v, np.float64)) * 1 + np.isposinf(np.asarray(v, np.float64)) * 2 + np.isneginf(np.asarray(v, np.float64)) * 3).tolist() for k, v in tree.items()}


@pytest.mark.parametrize("poison", ["params", "grads", "state"])
@pytest.mark.parametrize("name", sorted(PARITY))
def test_non_finite_values_propagate_as_in_optax(name, poison):
    """NaN, +inf and -inf in one entry of the params, the first gradients or the state: after two steps
    the NaN and infinite entries of every leaf are exactly optax's (a NaN norm makes the whole
    tensor NaN, never the zero-norm branch), for both backends, the optax contract and the fused step."""
    _check_non_finite(name, poison, jnp.float32)


@pytest.mark.parametrize("name", ["adamw", "fromage", "lamb", "lars", "novograd", "dog", "prodigy", "schedule_free_adamw"])
def test_non_finite_values_propagate_as_in_optax_bfloat16(name):
    """The same with bfloat16 params, gradients and state (fromax accumulates in f32, optax in bf16:
    the NaN and infinite positions still agree)."""
    for poison in ("params", "grads", "state"):
        _check_non_finite(name, poison, jnp.bfloat16)


def _check_non_finite(name, poison, dtype):
    make, theirs, needs_value = PARITY[name]
    params = _params(dtype)
    for value in (np.nan, np.inf, -np.inf):
        want = _where_non_finite(_train(theirs(), None, poison, value, needs_value, params, dtype))
        for backend, fused in RUNS:
            got = _where_non_finite(_train(make(backend), (backend, fused), poison, value, needs_value, params, dtype))
            assert got == want, f"{name} {np.dtype(dtype).name}, {value} in the {poison}, {backend} {'fused' if fused else 'contract'}:\n fromax {got}\n optax  {want}"


def _close(got, want, rtol, what):
    for k in want:
        g, w = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
        assert np.array_equal(np.isfinite(g), np.isfinite(w)), (what, k)
        scale = np.max(np.abs(w[np.isfinite(w)]), initial=0.0)
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * max(scale, np.finfo(np.float64).tiny), err_msg=f"{what}, leaf {k}")


@pytest.mark.parametrize("kind", ["zero", "denormal"])
@pytest.mark.parametrize("name", sorted(PARITY))
def test_zero_and_denormal_tensors_as_in_optax(name, kind):
    """A weight of zeros, or of denormals (whose squares underflow to a zero norm, as in optax): the
    same values as optax's after two steps, to f32 rounding."""
    make, theirs, needs_value = PARITY[name]
    params = _params(jnp.float32, kind)
    want = _train(theirs(), None, None, 0.0, needs_value, params, jnp.float32)
    for backend, fused in RUNS:
        got = _train(make(backend), (backend, fused), None, 0.0, needs_value, params, jnp.float32)
        _close(got, want, 2e-5, f"{name} {kind} {backend} {'fused' if fused else 'contract'}")


@pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 runs in the x64 subprocess (test_float64_in_an_x64_process)")
@pytest.mark.parametrize("name", sorted(PARITY))
def test_float64_matches_optax_to_rounding(name):
    """float64 params, ten steps: optax's values to 1e-14 of each leaf's scale (coefficients, weight
    decay and masks reach the kernels in float64, not rounded to float32)."""
    make, theirs, needs_value = PARITY[name]
    params = _params(jnp.float64)
    want = _train(theirs(), None, None, 0.0, needs_value, params, jnp.float64, steps=10)
    for backend, fused in RUNS:
        got = _train(make(backend), (backend, fused), None, 0.0, needs_value, params, jnp.float64, steps=10)
        assert all(v.dtype == jnp.float64 for v in got.values())
        _close(got, want, 1e-14, f"{name} f64 {backend} {'fused' if fused else 'contract'}")


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="this is the x64 run itself")
def test_float64_in_an_x64_process():
    """The float64 cases (x64 must be on before JAX starts), in a subprocess."""
    passes_in_an_x64_process(__file__, "test_float64_matches_optax_to_rounding", len(PARITY))
