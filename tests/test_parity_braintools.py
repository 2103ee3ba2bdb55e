"""fromax.optim against braintools.optim 0.3.0 itself (a test dependency): the schedulers' rates step
by step (before the first ``step()`` too, read from the scheduler and through an optimizer), the
attributes and state_dict keys braintools code reads, deprecated arguments and the error types and
words code matches on. Where braintools contradicts its own documentation or reports a rate it does
not apply, fromax differs and the README's migration table says so: those rows are checked here too.
"""

from __future__ import annotations

import inspect
import warnings

import brainstate  # a test dependency (pip install '.[test]'): a missing one fails, never skips
import braintools.optim as bt
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fromax.optim as fx

# The same arguments for both libraries' schedulers.
SCHEDULERS = {
    "StepLR": dict(base_lr=0.1, step_size=3, gamma=0.5),
    "MultiStepLR": dict(base_lr=0.1, milestones=[2, 5], gamma=0.1),
    "ExponentialLR": dict(base_lr=0.1, gamma=0.9),
    "ExponentialDecayLR": dict(base_lr=0.1, decay_steps=4, decay_rate=0.5, transition_begin=2, staircase=True, end_value=0.02),
    "CosineAnnealingLR": dict(base_lr=0.1, T_max=5, eta_min=0.01),
    "PolynomialLR": dict(base_lr=0.1, total_iters=4, power=2.0),
    "WarmupScheduler": dict(base_lr=0.1, warmup_epochs=3, warmup_start_lr=0.01),
    "CyclicLR": dict(base_lr=0.01, max_lr=0.1, step_size_up=2, mode="triangular2"),
    "OneCycleLR": dict(max_lr=0.1, total_steps=10),
    "OneCycleLR(linear)": dict(max_lr=0.1, total_steps=12, pct_start=0.25, anneal_strategy="linear", final_div_factor=100.0),
    "LinearLR": dict(base_lr=0.1, start_factor=0.5, end_factor=1.0, total_iters=4),
    "ConstantLR": dict(base_lr=0.1, factor=0.5, total_iters=3),
    "CosineAnnealingWarmRestarts": dict(base_lr=0.1, T_0=2, T_mult=2),
    "CosineAnnealingWarmRestarts(T_mult=1)": dict(base_lr=0.1, T_0=3, T_mult=1, eta_min=0.01),
    "WarmupCosineSchedule": dict(base_lr=0.1, warmup_steps=3, total_steps=10, warmup_start_lr=0.01, eta_min=0.001),
    "PiecewiseConstantSchedule": dict(base_lr=0.1, boundaries=[3, 6], values=[1.0, 0.5, 0.1]),
}
EPOCHS = 14
# Rows of the README's migration table: braintools' CosineAnnealingLR holds eta_min after T_max
# (fromax: PyTorch's closed form, the cosine goes on), so only epochs up to T_max are compared.
COMPARED_EPOCHS = {"CosineAnnealingLR": 6}


def _make(lib, key):
    return getattr(lib, key.split("(")[0])(**SCHEDULERS[key])


def _rates(lib, key):
    sched = _make(lib, key)
    rates = []
    for _ in range(EPOCHS):
        rates.append(float(sched.get_last_lr()[0]))
        sched.step()
    return np.array(rates)


def _trained(lib, key):
    """The rate each SGD step applies (w -= lr * 1) and the optimizer's reported ``current_lr``
    before each step, with the scheduler stepped after each optimizer step."""
    sched = _make(lib, key)
    w = brainstate.ParamState(jnp.zeros(1))
    opt = lib.SGD(lr=sched)
    opt.register_trainable_weights({"w": w})
    applied, reported = [], []
    for _ in range(EPOCHS):
        reported.append(float(opt.current_lr))
        before = float(w.value[0])
        opt.step({"w": jnp.ones(1)})
        applied.append(before - float(w.value[0]))
        sched.step()
    return np.array(applied), np.array(reported)


@pytest.mark.parametrize("key", sorted(SCHEDULERS))
def test_scheduler_rates_are_braintools(key):
    n = COMPARED_EPOCHS.get(key, EPOCHS)
    np.testing.assert_allclose(_rates(fx, key)[:n], _rates(bt, key)[:n], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("key", sorted(SCHEDULERS))
def test_rates_applied_through_an_optimizer_are_braintools(key):
    """Every step applies braintools' rate; ``current_lr`` reports the rate the next step applies.
    braintools reports its base rate before the first ``step()`` while applying the schedule's
    (a README migration-table row): from the first scheduler step on, the reports agree too."""
    n = COMPARED_EPOCHS.get(key, EPOCHS)
    (ours_applied, ours_reported), (theirs_applied, theirs_reported) = _trained(fx, key), _trained(bt, key)
    atol = 2e-6 * np.max(theirs_applied)  # f32 rounding of the rates (and of w -= lr), at the peak's scale
    np.testing.assert_allclose(ours_applied[:n], theirs_applied[:n], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(ours_reported[:n], ours_applied[:n], rtol=1e-5, atol=atol)
    np.testing.assert_allclose(ours_reported[1:n], theirs_reported[1:n], rtol=1e-5, atol=atol)


def test_braintools_reports_its_base_rate_before_the_first_step():
    """The migration-table row: braintools' ``current_lr`` is the base rate before the first
    ``step()`` although the step applies the schedule's (0.05 of ConstantLR(0.1, factor=0.5))."""
    (ours_applied, ours_reported), (theirs_applied, theirs_reported) = _trained(fx, "ConstantLR"), _trained(bt, "ConstantLR")
    assert theirs_reported[0] == pytest.approx(0.1) and theirs_applied[0] == pytest.approx(0.05)
    assert ours_reported[0] == pytest.approx(0.05) and ours_applied[0] == pytest.approx(0.05)


def test_cyclic_lr_step_size_down_is_honoured():
    """The migration-table row: braintools documents ``step_size_down`` as the length of the
    decreasing half but ignores it (it descends in ``step_size_up`` steps); fromax descends in
    ``step_size_down`` steps, as documented (and as PyTorch)."""
    args = dict(base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3)
    rates = {}
    for lib in (fx, bt):
        sched = lib.CyclicLR(**args)
        rates[lib] = []
        for _ in range(6):
            rates[lib].append(float(sched.get_last_lr()[0]))
            sched.step()
    np.testing.assert_allclose(rates[fx], [0.01, 0.055, 0.1, 0.07, 0.04, 0.01], rtol=1e-6)
    np.testing.assert_allclose(rates[bt][:5], [0.01, 0.055, 0.1, 0.055, 0.01], rtol=1e-6)


def test_cosine_warm_restarts_t_cur_and_jumps():
    """``T_cur``/``T_i`` as attributes and state_dict keys; ``step(epoch)`` lands where stepping one
    by one does, rates and ``T_cur`` both, as in braintools."""
    for lib in (fx, bt):
        assert {"T_cur", "T_i"} <= set(lib.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=2).state_dict())
    for epoch in (1, 2, 5, 6, 13):
        stepped, jumped, theirs = (lib.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=2) for lib in (fx, fx, bt))
        for _ in range(epoch):
            stepped.step()
            theirs.step()
        jumped.step(epoch)
        assert float(jumped.get_last_lr()[0]) == pytest.approx(float(stepped.get_last_lr()[0]), rel=1e-6)
        assert float(jumped.get_last_lr()[0]) == pytest.approx(float(theirs.get_last_lr()[0]), rel=1e-6)
        assert float(jumped.T_cur.value) == float(stepped.T_cur.value) == pytest.approx(float(theirs.T_cur.value))
        assert float(stepped.T_i.value) == pytest.approx(float(theirs.T_i.value))


# braintools' optimizers (fromax.optim's learning-rate-free ones have no braintools counterpart).
OPTIMIZERS = [n for n in fx.__all__ if isinstance(getattr(fx, n), type) and issubclass(getattr(fx, n), fx.OptaxOptimizer)
              and n not in ("OptaxOptimizer", "Lookahead") and hasattr(bt, n)]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_attributes_braintools_code_reads(name):
    """Every constructor argument is readable as an attribute with its value, and ``param_states``,
    ``_current_lr`` (whose ``.value`` reads and writes the rate) and ``current_lr`` are there, as in
    braintools."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fromage's momentum, deprecated arguments
        ours, theirs = getattr(fx, name)(), getattr(bt, name)()
    for arg in inspect.signature(getattr(fx, name)).parameters:
        if arg in ("args", "kwargs", "lr"):
            continue
        assert hasattr(ours, arg), f"{name}.{arg}"
        if hasattr(theirs, arg) and isinstance(getattr(theirs, arg), (int, float, bool, tuple)) and getattr(theirs, arg) is not None:
            assert np.allclose(getattr(ours, arg), getattr(theirs, arg)), (name, arg, getattr(ours, arg), getattr(theirs, arg))
    a, b = brainstate.ParamState(jnp.ones(2)), brainstate.ParamState(jnp.ones(3))
    ours.register_trainable_weights({"a": a})
    ours.add_param_group({"b": b})
    assert ours.param_states.to_pytree() == {"a": a, "b": b}
    assert len(ours.param_states) == 2 and set(ours.param_states.to_dict()) == {"['a']", "['b']"}
    assert float(ours._current_lr.value) == pytest.approx(float(ours.current_lr))
    ours._current_lr.value = 0.25
    assert float(ours.current_lr) == pytest.approx(0.25) and ours.get_last_lr()[0] == pytest.approx(0.25)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_group_rates_and_state_dict_keys_are_braintools(name):
    """``param_groups[0]["lr"]`` is a State-like whose ``.value`` is group 0's rate (braintools'
    ``_current_lr``: writing one writes the other); an added group's ``lr`` is its float rate; and
    ``state_dict()`` has every key braintools' has, at the top and in each group, with the rates
    braintools reports there."""
    dicts = {}
    for lib in (fx, bt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = getattr(lib, name)(lr=0.01)
        opt.register_trainable_weights({"a": brainstate.ParamState(jnp.ones(2))})
        opt.add_param_group({"b": brainstate.ParamState(jnp.ones(3))}, lr=0.5)
        groups = opt.param_groups
        assert float(groups[0]["lr"].value) == pytest.approx(0.01) and groups[1]["lr"] == pytest.approx(0.5)
        groups[0]["lr"].value = 0.02
        assert float(opt.current_lr) == pytest.approx(0.02) and float(opt._current_lr.value) == pytest.approx(0.02)
        opt.current_lr = 0.03
        assert float(groups[0]["lr"].value) == pytest.approx(0.03)
        dicts[lib] = opt.state_dict()
    ours, theirs = dicts[fx], dicts[bt]
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    assert set(theirs["param_groups"]) == set(ours["param_groups"]) == {"0", "1"}
    for i in ("0", "1"):
        assert set(theirs["param_groups"][i]) <= set(ours["param_groups"][i]), (i, set(theirs["param_groups"][i]) - set(ours["param_groups"][i]))
        assert float(ours["param_groups"][i]["lr"]) == pytest.approx(float(theirs["param_groups"][i]["lr"]))
        np.testing.assert_array_equal(jax.tree.leaves(ours["param_groups"][i]["params"]), jax.tree.leaves(theirs["param_groups"][i]["params"]))
    assert float(ours["lr"]) == pytest.approx(float(theirs["lr"])) and ours["base_lr"] == pytest.approx(theirs["base_lr"])


def test_assigning_a_group_rate_sets_it():
    """The migration-table row: ``param_groups[i]["lr"] = x`` (PyTorch's idiom) sets the rate the
    next step applies; braintools replaces the dict entry and keeps applying the old rate."""
    applied = {}
    for lib in (fx, bt):
        a, b = brainstate.ParamState(jnp.zeros(1)), brainstate.ParamState(jnp.zeros(1))
        opt = lib.SGD(lr=0.1)
        opt.register_trainable_weights({"a": a})
        opt.add_param_group({"b": b}, lr=0.2)
        opt.param_groups[1]["lr"] = 0.05
        opt.step({"a": jnp.ones(1), "b": jnp.ones(1)})
        applied[lib] = -float(b.value[0])
    assert applied[fx] == pytest.approx(0.05)
    assert applied[bt] != pytest.approx(0.05)
    opt.param_groups[0]["lr"] = 0.3
    assert float(opt.current_lr) == pytest.approx(0.1)  # braintools: the write does not reach the rate
    ours = fx.SGD(lr=0.1)
    ours.register_trainable_weights({"a": brainstate.ParamState(jnp.zeros(1))})
    ours.param_groups[0]["lr"] = 0.3
    assert float(ours.current_lr) == pytest.approx(0.3) and float(ours.param_groups[0]["lr"].value) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        ours.param_groups[0]["lr"] = -1.0


@pytest.mark.parametrize("key", sorted(SCHEDULERS))
def test_scheduler_state_dict_keys_are_braintools(key):
    assert set(_make(bt, key).state_dict()) <= set(_make(fx, key).state_dict())


def _five_steps(lib, name, hyperparameters):
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    w, b = brainstate.ParamState(jax.random.normal(k[0], (4, 3))), brainstate.ParamState(jnp.full((3,), 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = getattr(lib, name)(**hyperparameters)
    opt.register_trainable_weights({"w": w, "b": b})
    for i in range(5):
        opt.step({"w": jnp.cos(w.value * (i + 1)), "b": jnp.sin(b.value + i)})
    return np.concatenate([np.ravel(w.value), np.ravel(b.value)])


# Adafactor differs by a README migration-table row (braintools ignores clip_threshold, beta1 and
# eps[1]); LBFGS's steps need a value function and are checked against optax in test_optim.py.
SAME_STEPS = [n for n in OPTIMIZERS if n not in ("Adafactor", "LBFGS")]


@pytest.mark.parametrize("name", SAME_STEPS)
def test_optimizer_steps_are_braintools(name):
    """The same brainstate parameters after five steps as braintools', with and without weight decay."""
    variants = [{"lr": 0.01}]
    if "weight_decay" in inspect.signature(getattr(fx, name)).parameters:
        variants.append({"lr": 0.01, "weight_decay": 0.05})
    for hp in variants:
        ours, theirs = _five_steps(fx, name, hp), _five_steps(bt, name, hp)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.max(np.abs(theirs)), err_msg=f"{name} {hp}")


def test_deprecated_adam_betas_still_work_and_warn():
    for lib in (fx, bt):
        with pytest.warns(DeprecationWarning, match="beta1"):
            opt = lib.Adam(beta1=0.8, beta2=0.99)
        assert tuple(opt.betas) == (0.8, 0.99)


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda lib: lib.SGD(lr=-1.0), ValueError, "Invalid learning rate"),
        (lambda lib: lib.Adam(lr=-0.5), ValueError, "Invalid learning rate"),
        (lambda lib: lib.LBFGS(linesearch="nope"), ValueError, "Unknown linesearch"),
    ],
)
def test_errors_keep_braintools_types_and_words(build, error, words):
    for lib in (fx, bt):
        with pytest.raises(error, match=words):
            build(lib)
