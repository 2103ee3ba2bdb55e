"""fromax.optim's 17 LR schedulers: each sequence equals its closed form (PyTorch's definition where
the scheduler is PyTorch's, braintools' documented one where braintools defines it differently
(OneCycleLR, PiecewiseConstantSchedule), written here in float64 NumPy), and stepping one changes the lr a jitted
train step applies without compiling it again."""

from __future__ import annotations

import math

import brainstate  # a test dependency (pip install '.[test]'): a missing one fails, never skips
import jax.numpy as jnp
import numpy as np
import pytest

import fromax.optim as optim


def _cos(high, low, pct):
    return low + (high - low) * (1 + math.cos(math.pi * pct)) / 2


def _cyclic(e, base=0.01, peak=0.1, up=2, down=3):
    # PyTorch's CyclicLR, mode='triangular2'
    total = up + down
    cycle = math.floor(1 + e / total)
    x = 1 + e / total - cycle
    ratio = up / total
    s = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return base + (peak - base) * s / 2 ** (cycle - 1)


def _one_cycle(e, peak=0.1, total=10, pct=0.3, div=25.0, final_div=1e4):
    # braintools' OneCycleLR (as its docstring states): linear warmup from peak / div over pct * total
    # steps, then a cosine from the peak to peak / final_div at total, held after the end
    initial, warmup = peak / div, pct * total
    if e <= warmup:
        return initial + min(e / warmup, 1.0) * (peak - initial)
    return _cos(peak, peak / final_div, min((e - warmup) / ((1 - pct) * total), 1.0))


def _sgdr(e, base=0.1, t0=2, mult=2, low=0.0):
    start, period = 0, t0
    while e >= start + period:
        start, period = start + period, period * mult
    return _cos(base, low, (e - start) / period)


# name: (scheduler factory, closed form of the epoch)
CLOSED_FORMS = {
    "StepLR": (lambda: optim.StepLR(0.1, step_size=3, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 3)),
    "MultiStepLR": (lambda: optim.MultiStepLR(0.1, milestones=[2, 5], gamma=0.1), lambda e: 0.1 * 0.1 ** ((e >= 2) + (e >= 5))),
    "ExponentialLR": (lambda: optim.ExponentialLR(0.1, gamma=0.9), lambda e: 0.1 * 0.9**e),
    "ExponentialDecayLR": (
        lambda: optim.ExponentialDecayLR(0.1, decay_steps=4, decay_rate=0.5, transition_begin=2, staircase=True, end_value=0.02),
        lambda e: max(0.1 * 0.5 ** math.floor(max(e - 2, 0) / 4), 0.02)),
    "CosineAnnealingLR": (lambda: optim.CosineAnnealingLR(0.1, T_max=5, eta_min=0.01), lambda e: _cos(0.1, 0.01, e / 5)),
    "PolynomialLR": (lambda: optim.PolynomialLR(0.1, total_iters=4, power=2.0), lambda e: 0.1 * (1 - min(e, 4) / 4) ** 2),
    "WarmupScheduler": (lambda: optim.WarmupScheduler(0.1, warmup_epochs=3, warmup_start_lr=0.01),
                        lambda e: 0.01 + 0.09 * min(e / 3, 1.0)),
    "CyclicLR": (lambda: optim.CyclicLR(0.01, max_lr=0.1, step_size_up=2, step_size_down=3, mode="triangular2"), _cyclic),
    "OneCycleLR": (lambda: optim.OneCycleLR(max_lr=0.1, total_steps=10), _one_cycle),
    "LinearLR": (lambda: optim.LinearLR(0.1, start_factor=0.5, end_factor=1.0, total_iters=4),
                 lambda e: 0.1 * (0.5 + 0.5 * min(e, 4) / 4)),
    "ConstantLR": (lambda: optim.ConstantLR(0.1, factor=0.5, total_iters=3), lambda e: 0.05 if e < 3 else 0.1),
    "ChainedScheduler": (lambda: optim.ChainedScheduler([optim.ConstantLR(0.1, factor=0.5, total_iters=2), optim.ExponentialLR(0.1, gamma=0.9)]),
                         lambda e: 0.1 * (0.5 if e < 2 else 1.0) * 0.9**e),
    "SequentialLR": (lambda: optim.SequentialLR([optim.ConstantLR(0.1, factor=0.1, total_iters=2), optim.ExponentialLR(0.1, gamma=0.9)],
                                                milestones=[2]),
                     lambda e: 0.01 if e < 2 else 0.1 * 0.9 ** (e - 2)),
    "CosineAnnealingWarmRestarts": (lambda: optim.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=2), _sgdr),
    "WarmupCosineSchedule": (lambda: optim.WarmupCosineSchedule(0.1, warmup_steps=3, total_steps=10, warmup_start_lr=0.01, eta_min=0.001),
                             lambda e: 0.01 + 0.09 * e / 3 if e < 3 else _cos(0.1, 0.001, min((e - 3) / 7, 1.0))),
    "PiecewiseConstantSchedule": (lambda: optim.PiecewiseConstantSchedule(0.1, boundaries=[3, 6], values=[1.0, 0.5, 0.1]),
                                  lambda e: 1.0 if e < 3 else 0.5 if e < 6 else 0.1),  # absolute rates, as braintools documents
}

# ReduceLROnPlateau: metrics, and the rates after each step(metric) (PyTorch's rules, worked by hand:
# patience 2, cooldown 1, factor 0.5, threshold 0 'abs').
PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
PLATEAU_LRS = [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]


def _plateau():
    return optim.ReduceLROnPlateau(0.1, factor=0.5, patience=2, cooldown=1, threshold=0.0, threshold_mode="abs")


def test_all_seventeen_are_covered():
    assert set(CLOSED_FORMS) | {"ReduceLROnPlateau"} == set(optim.SCHEDULERS)


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_sequence_matches_closed_form(name):
    make, form = CLOSED_FORMS[name]
    sched = make()
    got = []
    for _ in range(16):
        got.append(sched.get_last_lr()[0])
        sched.step()
    np.testing.assert_allclose(got, [form(e) for e in range(16)], rtol=2e-6, atol=1e-9)


def test_reduce_on_plateau_follows_the_metric():
    sched = _plateau()
    got = []
    for m in PLATEAU_METRICS:
        sched.step(m)
        got.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(got, PLATEAU_LRS, rtol=1e-6)
    with pytest.raises(TypeError, match="metric"):
        sched.step()


@pytest.mark.parametrize("name", [*CLOSED_FORMS, "ReduceLROnPlateau"])
def test_stepping_changes_the_applied_lr_without_recompiling(name):
    sched = _plateau() if name == "ReduceLROnPlateau" else CLOSED_FORMS[name][0]()
    w = brainstate.ParamState(jnp.zeros(3))
    opt = optim.SGD(lr=sched).register_trainable_weights({"w": w})
    traces = []

    @brainstate.transform.jit
    def train_step(g):
        traces.append(1)
        opt.step({"w": g})

    applied, expected = [], []
    for t in range(9):
        expected.append(opt.get_last_lr()[0])
        before = float(w.value[0])
        train_step(jnp.ones(3))
        applied.append(before - float(w.value[0]))  # SGD on g = 1 moves by exactly lr
        sched.step(PLATEAU_METRICS[t]) if name == "ReduceLROnPlateau" else sched.step()
    assert len(traces) == 1
    np.testing.assert_allclose(applied, expected, rtol=1e-5, atol=1e-8)
    assert len(set(np.round(expected, 9))) > 1, "the schedule never changed the rate"


@pytest.mark.parametrize("name", ["CosineAnnealingLR", "ReduceLROnPlateau"])
def test_scheduler_state_dict_round_trip(name):
    sched = _plateau() if name == "ReduceLROnPlateau" else CLOSED_FORMS[name][0]()
    for m in PLATEAU_METRICS[:5]:
        sched.step(m) if name == "ReduceLROnPlateau" else sched.step()
    saved = sched.state_dict()
    fresh = _plateau() if name == "ReduceLROnPlateau" else CLOSED_FORMS[name][0]()
    fresh.load_state_dict(saved)
    for m in PLATEAU_METRICS[5:]:
        sched.step(m) if name == "ReduceLROnPlateau" else sched.step()
        fresh.step(m) if name == "ReduceLROnPlateau" else fresh.step()
        assert fresh.get_last_lr() == sched.get_last_lr()
