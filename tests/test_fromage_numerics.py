"""Fromage numerics: FFI kernels vs the pure-JAX reference vs the paper's math vs optax.fromage."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
from helpers import DTYPES, assert_trees_close, paper_fromage_np, random_grads, random_tree

SCHEDULE = optax.cosine_decay_schedule(0.1, decay_steps=20, alpha=0.05)
LRS = {"0.01": 0.01, "0.1": 0.1, "schedule": SCHEDULE}
# One-step tolerance of kernel vs reference: f32 rounding (different summation order of the norms,
# ~1e-6 relative) or one 16-bit ulp (the kernel and XLA may round a value on either side of a tie).
ONE_STEP_RTOL = {"f32": 1e-5, "bf16": 2**-7, "f16": 2**-10, "mixed": 2**-7}


def _tree(dtype_name: str, n_leaves: int = 18, seed: int = 0):
    dtypes = tuple(DTYPES.values()) if dtype_name == "mixed" else (DTYPES[dtype_name],)
    return random_tree(seed, n_leaves, dtypes=dtypes, zero_every=5)


@functools.lru_cache(maxsize=None)
def _jitted(lr_name: str, p_bound, backend: str):
    tx = fromax.fromage(LRS[lr_name], p_bound=p_bound, backend=backend)
    return tx, jax.jit(tx.update), jax.jit(functools.partial(fromax.step, tx))


@pytest.mark.parametrize("dtype_name", ["f32", "bf16", "f16", "mixed"])
@pytest.mark.parametrize("lr_name", list(LRS))
@pytest.mark.parametrize("p_bound", [None, 1.0])
def test_kernel_matches_reference_each_step(dtype_name, lr_name, p_bound):
    """Same inputs each step: the kernel's update and fused step equal the reference's (1..12 steps)."""
    params, _ = _tree(dtype_name)
    tx_k, update_k, step_k = _jitted(lr_name, p_bound, "ffi")
    tx_r, update_r, step_r = _jitted(lr_name, p_bound, "xla")
    state_k, state_r = tx_k.init(params), tx_r.init(params)
    if p_bound is not None:
        np.testing.assert_allclose(state_k.init_norms, state_r.init_norms, rtol=1e-6)
    rtol = ONE_STEP_RTOL[dtype_name]
    for t in range(12):
        grads = random_grads(100 + t, params)
        (upd_k, _), (upd_r, _) = update_k(grads, state_k, params), update_r(grads, state_r, params)
        (new_k, state_k), (new_r, state_r) = step_k(grads, state_k, params), step_r(grads, state_r, params)
        # The update (W_new - W) is small next to W: its error is bounded by W's rounding, not its own.
        assert_trees_close(upd_k, upd_r, rtol=rtol, atol_rel=rtol / 4, err=f"update step {t}", scale_tree=params)
        assert_trees_close(new_k, new_r, rtol=rtol, atol_rel=rtol / 4, err=f"step {t}")
        assert int(state_k.count) == int(state_r.count) == t + 1
        params = new_r  # both continue from the same point: a per-step comparison


@pytest.mark.parametrize("p_bound", [None, 1.0])
@pytest.mark.parametrize("lr_name", ["0.01", "0.1", "schedule"])
def test_trajectory_matches_paper_math(lr_name, p_bound):
    """50 fused kernel steps (f32) follow the paper's update computed independently in float64."""
    params, _ = _tree("f32", n_leaves=12, seed=3)
    tx, _, step = _jitted(lr_name, p_bound, "ffi")
    state = tx.init(params)
    w0_norms = {k: float(np.linalg.norm(np.asarray(v, np.float64))) for k, v in params.items()}
    oracle = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for t in range(50):
        grads = random_grads(200 + t, params)
        lr = float(LRS[lr_name](t)) if callable(LRS[lr_name]) else LRS[lr_name]
        oracle = {k: paper_fromage_np(oracle[k], np.asarray(grads[k]), lr, p_bound, w0_norms[k]) for k in oracle}
        params, state = step(grads, state, params)
    # f32 rounding accumulated over 50 steps (each ~1e-7 relative, a contraction, not a blow-up).
    assert_trees_close(params, oracle, rtol=2e-5, atol_rel=2e-6)


@pytest.mark.parametrize("min_norm", [None, 1e-6, 0.5])
@pytest.mark.parametrize("lr", [0.01, 0.1, "schedule"])
def test_matches_optax_fromage(lr, min_norm):
    """optax.fromage(lr, min_norm) is the same math, constant or scheduled lr (both accept schedules);
    min_norm=None is the paper's rule, optax's min_norm=0."""
    params, grads = random_tree(7, 20, zero_every=4)
    lr = optax.linear_schedule(0.1, 0.01, 10) if lr == "schedule" else lr
    ours = fromax.fromage(lr, min_norm, backend="ffi")
    theirs = optax.fromage(lr, 0.0 if min_norm is None else min_norm)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for t in range(10):
        grads = random_grads(300 + t, params)
        u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, params)
        u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs, params)
        assert_trees_close(u_ours, u_theirs, rtol=1e-5, atol_rel=1e-6, err=f"step {t}", scale_tree=params)
        params = optax.apply_updates(params, u_theirs)


def test_zero_tensor_and_zero_gradient_use_the_plain_step():
    """No epsilon: a zero-initialised leaf moves by exactly -lr*g/sqrt(1+lr^2), a zero gradient only shrinks."""
    lr = 0.1
    params = {"bias": jnp.zeros(5), "w": jnp.arange(1.0, 7.0)}
    grads = {"bias": jnp.arange(5.0) - 2.0, "w": jnp.zeros(6)}
    for backend in ("ffi", "xla"):
        tx = fromax.fromage(lr, backend=backend)
        new, _ = fromax.step(tx, grads, tx.init(params), params)
        root = np.sqrt(1 + lr * lr)
        np.testing.assert_allclose(new["bias"], -lr * np.asarray(grads["bias"]) / root, rtol=1e-6)
        np.testing.assert_allclose(new["w"], np.asarray(params["w"]) / root, rtol=1e-6)
    # optax's default min_norm=1e-6 instead scales the bias step by 1e-6/|g|: far slower.
    u_optax, _ = optax.fromage(lr).update(grads, optax.fromage(lr).init(params), params)
    assert np.linalg.norm(u_optax["bias"]) < 1e-3 * np.linalg.norm(new["bias"])


def test_p_bound_caps_norm_and_leaves_zero_init_uncapped():
    params = {"w": jnp.full((50, 40), 0.1), "b": jnp.zeros(40)}
    tx = fromax.fromage(0.3, p_bound=1.0, backend="ffi")
    state = tx.init(params)
    w0 = float(jnp.linalg.norm(params["w"]))
    step = jax.jit(functools.partial(fromax.step, tx))
    for t in range(30):
        # A gradient that anti-aligns with W grows its norm every step until the cap binds.
        grads = {"w": -params["w"] + 0.05 * random_grads(t, params)["w"], "b": jnp.ones(40)}
        params, state = step(grads, state, params)
    assert float(jnp.linalg.norm(params["w"])) == pytest.approx(w0, rel=1e-5)
    # The zero-initialised bias kept learning (the paper's code would have frozen it at 0).
    assert float(jnp.linalg.norm(params["b"])) > 0.5


@pytest.mark.parametrize("n_leaves", [1, 1200])
def test_leaf_counts(n_leaves):
    params, grads = random_tree(11, n_leaves, shapes=[(5,), (3, 4), (), (0,), (70000,)][: 5 if n_leaves < 10 else 4])
    tx_k, tx_r = fromax.fromage(0.05, p_bound=1.0, backend="ffi"), fromax.fromage(0.05, p_bound=1.0, backend="xla")
    new_k, _ = jax.jit(functools.partial(fromax.step, tx_k))(grads, tx_k.init(params), params)
    new_r, _ = jax.jit(functools.partial(fromax.step, tx_r))(grads, tx_r.init(params), params)
    assert_trees_close(new_k, new_r, rtol=1e-5, atol_rel=1e-6)


def test_nan_and_inf_gradients_follow_the_reference():
    params, grads = random_tree(5, 6, shapes=[(10,), (200, 400)])
    grads["leaf0000"] = grads["leaf0000"].at[3].set(jnp.nan)
    grads["leaf0001"] = grads["leaf0001"].at[7, 9].set(jnp.inf)
    for p_bound in (None, 1.0):
        tx_k, tx_r = fromax.fromage(0.1, p_bound=p_bound, backend="ffi"), fromax.fromage(0.1, p_bound=p_bound, backend="xla")
        new_k, _ = jax.jit(functools.partial(fromax.step, tx_k))(grads, tx_k.init(params), params)
        new_r, _ = jax.jit(functools.partial(fromax.step, tx_r))(grads, tx_r.init(params), params)
        for k in params:
            a, e = np.asarray(new_k[k]), np.asarray(new_r[k])
            np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=k)
            finite = e[~np.isnan(e)]
            scale = np.max(np.abs(finite[np.isfinite(finite)]), initial=0.0)
            np.testing.assert_allclose(a[~np.isnan(a)], finite, rtol=1e-5, atol=1e-6 * scale, err_msg=k)
        assert np.isnan(np.asarray(new_k["leaf0000"])[3])
        assert np.all(np.isfinite(np.asarray(new_k["leaf0002"])))  # other leaves are untouched by it


def test_fused_step_is_deterministic():
    params, grads = random_tree(9, 8, shapes=[(700, 900), (33,)])
    tx = fromax.fromage(0.1, backend="ffi")
    step = jax.jit(functools.partial(fromax.step, tx))
    first, _ = step(grads, tx.init(params), params)
    for _ in range(3):
        again, _ = step(grads, tx.init(params), params)
        for k in params:
            np.testing.assert_array_equal(np.asarray(again[k]), np.asarray(first[k]))
