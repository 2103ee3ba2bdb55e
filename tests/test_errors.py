"""Bad input gives a clear error that names the leaf; backend selection is explicit."""

from __future__ import annotations

import os
import subprocess
import sys

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


@pytest.mark.parametrize("make, who", [(fromax.fromage, "fromax.fromage"), (lambda: fromax.lamb(1e-3), "fromax.lamb"),
                                       (lambda: fromax.lamb(1e-3, stacked_axes=()), "fromax.lamb")])
def test_mismatch_errors_name_the_optimizer_once(make, who):
    tx = make()
    bad = {"dense": {"w": jnp.ones((2, 3)), "b": jnp.ones(2)}}
    for grads, params in ((bad, PARAMS), (GRADS, None)):
        with pytest.raises(ValueError) as err:
            tx.update(grads, tx.init(PARAMS), params)
        assert str(err.value).startswith(f"{who}: ") or str(err.value).startswith(f"{who} needs"), str(err.value)
        assert "fromax: fromax" not in str(err.value)


def test_integer_leaf_names_leaf():
    params = {"w": jnp.ones(3), "step": jnp.zeros((), jnp.int32)}
    for tx in (fromax.fromage(), fromax.fromage(p_bound=1.0), fromax.adamw(1e-3), fromax.mechanize(fromax.lamb(1e-3))):
        with pytest.raises(TypeError, match=r"\['step'\].*int32"):  # at init, not at the first update
            tx.init(params)
    with pytest.raises(TypeError, match=r"\['step'\].*int32"):
        fromax.fromage().update(params, fromax.FromageState(jnp.zeros([], jnp.int32), None), params)
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


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: fromax.adamw("1e-3"), TypeError, r"fromax\.adamw: learning_rate must be a real number, got str '1e-3'"),
        (lambda: fromax.fromage(None), TypeError, r"fromax\.fromage: learning_rate must not be None"),
        (lambda: fromax.fromage(p_bound="1"), TypeError, r"fromax\.fromage: p_bound must be a real number"),
        (lambda: fromax.mechanize(None), TypeError, r"fromax\.mechanize: base_optimizer must not be None"),
        (lambda: fromax.schedule_free("adamw", 1e-3), TypeError, r"fromax\.schedule_free: base_optimizer must be an optax GradientTransformation"),
        (lambda: fromax.adamw(1e-3, b1=None), TypeError, r"fromax\.adamw: b1 must not be None"),
        (lambda: fromax.adamw(1e-3, mu_dtype=jnp.int32), TypeError, r"fromax\.adamw: mu_dtype must be a floating dtype"),
        (lambda: fromax.adamw(1e-3, mask="all"), TypeError, r"fromax\.adamw: mask must be a bool, a pytree"),
        (lambda: fromax.lars(1e-3, nesterov="yes"), TypeError, r"fromax\.lars: nesterov must be True or False"),
        (lambda: fromax.prodigy(betas=0.9), TypeError, r"fromax\.prodigy: betas must be a pair"),
        (lambda: fromax.prodigy(betas=(0.9, 1.5)), ValueError, r"fromax\.prodigy: betas\[1\] must be in \[0, 1\)"),
        (lambda: fromax.dog(init_step=("guess", 1e-6)), ValueError, r"fromax\.dog: init_step must be \('distance'"),
        (lambda: fromax.dog(init_step=("distance", -1.0)), ValueError, r"fromax\.dog: init_step\[1\] must be a finite scalar > 0"),
        (lambda: fromax.mechanize(fromax.adamw(1e-3), num_betas=0), ValueError, r"fromax\.mechanize: num_betas must be an int >= 1"),
        (lambda: fromax.schedule_free_sgd(warmup_steps=-1), ValueError, r"fromax\.schedule_free_sgd: warmup_steps must be an int >= 0"),
        (lambda: fromax.schedule_free_sgd(warmup_steps=2.5), TypeError, r"fromax\.schedule_free_sgd: warmup_steps must be an int"),
        (lambda: fromax.momo(lower_bound=float("nan")), ValueError, r"fromax\.momo: lower_bound must be a finite scalar"),
        (lambda: fromax.fromage(0.01, min_norm=-1.0), ValueError, r"fromax\.fromage: min_norm must be a finite scalar >= 0"),
        (lambda: fromax.fromage(0.01, unknown=1), TypeError, r"fromax\.fromage: got an unexpected keyword argument 'unknown'"),
    ],
)
def test_every_argument_is_checked_when_the_optimizer_is_built(build, error, message):
    """Wrong kinds (None, strings, ints for dtypes, non-transformations) and out-of-range values fail
    at construction with an error that names the optimizer and the argument."""
    with pytest.raises(error, match=message):
        build()


def test_every_constructor_argument_has_a_rule():
    """fromax._validate.checked refuses (at import) a factory with an argument it has no rule for;
    every public optimizer goes through it."""
    from fromax._validate import checked

    def f(a, b=1):
        return a, b

    with pytest.raises(RuntimeError, match=r"fromax\.f: arguments without a rule \['b'\]"):
        checked(a=lambda *_: None)(f)
    factories = [getattr(fromax, n) for n in fromax.__all__ if getattr(getattr(fromax, n), "fromax_factory", False)]
    assert len(factories) == 18
    for f in factories:
        assert getattr(f.__wrapped__, "__wrapped__", None) is not None, f.__name__  # eager_jit(checked(factory))


def test_complex_leaves_are_refused_at_init_with_the_workaround():
    """Complex parameters: a TypeError at init naming the leaf and recommending
    optax.contrib.split_real_and_imaginary, which then trains them (each part a real leaf)."""
    from optax import contrib

    params = {"z": jnp.array([1.0 + 1.0j, 2.0 - 0.5j], jnp.complex64), "w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"\['z'\] is complex \(complex64\).*split_real_and_imaginary"):
        fromax.adamw(1e-2).init(params)
    tx = contrib.split_real_and_imaginary(fromax.adamw(1e-2))
    state = tx.init(params)
    updates, state = tx.update(params, state, params)
    assert updates["z"].dtype == jnp.complex64 and bool(jnp.all(jnp.isfinite(updates["z"])))


def test_mu_dtype_wider_than_the_accumulator_is_refused_at_init():
    """mu_dtype: narrower (bfloat16) works; float64 moments for float32 params are refused at init,
    naming mu_dtype (without x64, float64 means float32, as in optax)."""
    params = {"w": jnp.ones(3)}
    tx = fromax.adamw(1e-2, mu_dtype=jnp.bfloat16)
    state = tx.init(params)
    assert state.mu["w"].dtype == jnp.bfloat16
    params, state = fromax.step(tx, {"w": jnp.ones(3)}, state, params)
    assert state.mu["w"].dtype == jnp.bfloat16 and bool(jnp.all(params["w"] < 1))
    with pytest.warns(UserWarning, match="float64 requested in zeros_like is not available"):  # optax's own warning
        assert fromax.adamw(1e-2, mu_dtype=jnp.float64).init(params).mu["w"].dtype == jnp.float32  # x64 off
    code = (
        "import jax, jax.numpy as jnp, fromax\n"
        "assert jax.config.jax_enable_x64\n"
        "try:\n"
        "    fromax.adamw(1e-2, mu_dtype=jnp.float64).init({'w': jnp.ones(3, jnp.float32)})\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "print(fromax.adamw(1e-2, mu_dtype=jnp.float64).init({'w': jnp.ones(3, jnp.float64)}).mu['w'].dtype)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, JAX_ENABLE_X64="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "fromax.adamw: mu_dtype float64 is wider than the float32" in run.stdout and run.stdout.strip().endswith("float64"), run.stdout


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda m, b: fromax.adamw(1e-3, weight_decay=0.1, mask=m, backend=b), r"fromax\.adamw: mask does not match the params"),
        (lambda m, b: fromax.lars(0.1, trust_ratio_mask=m, backend=b), r"fromax\.lars: trust_ratio_mask does not match the params"),
        (lambda m, b: fromax.lars(0.1, weight_decay=0.1, weight_decay_mask=m, backend=b), r"fromax\.lars: weight_decay_mask does not match the params"),
        (lambda m, b: fromax.dog(weight_decay=0.1, mask=m, backend=b), r"fromax\.dog: mask does not match the params"),
        (lambda m, b: fromax.cocob(weight_decay=0.1, mask=m, backend=b), r"fromax\.cocob: mask does not match the params"),
    ],
)
@pytest.mark.parametrize("backend", ["ffi", "xla"])
def test_a_mask_that_does_not_match_the_params_is_named(build, message, backend):
    """A pytree mask with other keys than the params: the error names the optimizer and the mask
    argument (optax's is JAX's bare pytree-structure error)."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    tx = build({"w": True}, backend)
    with pytest.raises(ValueError, match=message):
        tx.update(params, tx.init(params), params)
