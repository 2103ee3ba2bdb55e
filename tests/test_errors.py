"""Bad input gives a clear error that names the leaf; backend selection is explicit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import fromax
import fromax.optim
from fromax import _ffi

PARAMS = {"dense": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}}
GRADS = {"dense": {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}}


@pytest.mark.parametrize("backend", ["ffi", "xla"])
def test_params_none(backend):
    tx = fromax.fromage(backend=backend)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(GRADS, tx.init(PARAMS), None)


def test_trees_differ():
    tx = fromax.fromage()
    with pytest.raises(ValueError, match="trees differ"):
        tx.update({"dense": {"w": jnp.ones((3, 2))}}, tx.init(PARAMS), PARAMS)


def test_shape_mismatch_names_leaf():
    tx = fromax.fromage()
    bad = {"dense": {"w": jnp.ones((2, 3)), "b": jnp.ones(2)}}
    with pytest.raises(ValueError, match=r"\['dense'\]\['w'\].*\(2, 3\).*\(3, 2\)"):
        tx.update(bad, tx.init(PARAMS), PARAMS)


def test_integer_leaf_names_leaf():
    params = {"w": jnp.ones(3), "step": jnp.zeros((), jnp.int32)}
    tx = fromax.fromage()
    state = tx.init(params)  # without p_bound, init reads no leaf
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        tx.update(params, state, params)
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        fromax.fromage(p_bound=1.0).init(params)
    with pytest.raises(TypeError, match=r"\['step'\]"):
        fromax.per_tensor_norms(params)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="p_bound"):
        fromax.fromage(p_bound=0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        fromax.fromage(learning_rate=-0.1)
    with pytest.raises(ValueError, match="backend"):
        fromax.fromage(backend="gpu").update(GRADS, fromax.fromage().init(PARAMS), PARAMS)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: fromax.adamw(-1e-3), r"fromax\.adamw: learning_rate must be a finite scalar >= 0, got -0\.001"),
        (lambda: fromax.lamb(1e-3, b2=1.0), r"fromax\.lamb: b2 must be in \[0, 1\), got 1\.0"),
        (lambda: fromax.cocob(alpha=float("inf")), r"fromax\.cocob: alpha must be a finite scalar >= 0"),
        (lambda: fromax.prodigy(beta3=-0.5), r"fromax\.prodigy: beta3 must be in \[0, 1\)"),
        (lambda: fromax.novograd(1e-3, eps=(1e-6, 1e-6)), r"fromax\.novograd: eps must be a finite scalar >= 0"),
        (lambda: fromax.optim.Adam(lr=1e-3, eps=0.0), r"Adam: eps must be a finite scalar > 0, got 0\.0"),
        (lambda: fromax.optim.SGD(lr=1e-2, grad_clip_norm=0.0), r"SGD: grad_clip_norm must be a finite scalar > 0"),
    ],
)
def test_hyperparameter_errors_name_the_optimizer_and_argument(build, message):
    """One set of validators (fromax._validate) for the optimizers and the facade: an error names
    who was built, the argument, the rule it broke and the value."""
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("value", ["1e-3", 1e-3 + 0j, True])
def test_non_numeric_hyperparameter_is_a_type_error_naming_it(value):
    with pytest.raises(TypeError, match=r"fromax\.adamw: learning_rate must be a real number"):
        fromax.adamw(value)


def test_scheduled_and_zero_hyperparameters_pass():
    """0 is a valid learning rate and weight decay (check_nonnegative); schedules are not checked
    when the optimizer is built."""
    fromax.adamw(0.0, weight_decay=0.0)
    fromax.dog(learning_rate=lambda count: 1.0 - count)


def test_state_from_other_tree():
    tx = fromax.fromage(p_bound=1.0)
    state = tx.init({"w": jnp.ones(3)})
    with pytest.raises(ValueError, match="init_norms does not match"):
        tx.update(GRADS, state, PARAMS)


def test_ffi_backend_without_kernels_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_ffi, "_REGISTERED", {})
    with pytest.raises(RuntimeError, match="no fromax kernel is registered for platform 'cpu'"):
        fromax.fromage(backend="ffi").update(GRADS, fromax.fromage().init(PARAMS), PARAMS)
    # "auto" falls back to the reference: same numbers, no custom call.
    tx = fromax.fromage(backend="auto")
    text = jax.jit(tx.update).lower(GRADS, tx.init(PARAMS), PARAMS).as_text()
    assert "fromax_" not in text
    upd, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    assert jnp.all(jnp.isfinite(upd["dense"]["w"]))
