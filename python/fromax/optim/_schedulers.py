"""Learning-rate schedulers of :mod:`fromax.optim` (the ``braintools.optim`` 0.3.0 set, same names,
signatures and defaults).

A scheduler is a closed form ``lr_at(epoch)`` (one learning rate per base lr, i.e. per parameter
group) plus two States: ``last_epoch`` (int32) and ``current_lrs`` (float32). ``step()`` advances
the epoch and pushes the new rates into the optimizer's learning-rate State, which the optimizer
step reads as data: stepping a scheduler, inside or outside a jitted train step, never recompiles
it. ``ReduceLROnPlateau`` is the one scheduler driven by a metric instead of a closed form.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import jax.numpy as jnp
import numpy as np

from fromax.optim._state import COUNT_DTYPE, LR_DTYPE, OptimState, count_array, lr_array

__all__ = [
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "ExponentialDecayLR", "CosineAnnealingLR",
    "PolynomialLR", "WarmupScheduler", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR", "ConstantLR",
    "ChainedScheduler", "SequentialLR", "CosineAnnealingWarmRestarts", "WarmupCosineSchedule",
    "PiecewiseConstantSchedule",
]

Lr = Union[float, Sequence[float]]


def _lr_list(name: str, base_lr: Lr) -> list[float]:
    values = list(base_lr) if isinstance(base_lr, (list, tuple)) else [base_lr]
    if not values:
        raise ValueError(f"{name}: base_lr must not be empty")
    out = []
    for v in values:
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: learning rates must be finite and >= 0, got {v}")
        out.append(v)
    return out


def _positive_int(name: str, what: str, value: Any) -> int:
    if int(value) != value or value <= 0:
        raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")
    return int(value)


class LRScheduler:
    """Base class: a learning rate per parameter group as a closed form of the epoch.

    Subclasses define :meth:`lr_at`. ``step()`` (once per epoch, or per iteration: the unit is the
    user's) sets ``last_epoch += 1`` and the optimizer's learning rates to ``lr_at(last_epoch)``.
    """

    def __init__(self, base_lr: Lr = 1e-3, last_epoch: int = 0):
        self.base_lrs = _lr_list(type(self).__name__, base_lr)
        self.optimizer = None
        self.last_epoch = OptimState(count_array(last_epoch))
        self.current_lrs = OptimState(self._rates(self.last_epoch.value))

    # ---- the schedule -------------------------------------------------------------------------
    def lr_at(self, epoch: jnp.ndarray) -> jnp.ndarray:
        """The learning rates (one per base lr) at ``epoch`` (a traced int32 scalar)."""
        raise NotImplementedError

    def _rates(self, epoch) -> jnp.ndarray:
        return lr_array(self.lr_at(jnp.asarray(epoch, COUNT_DTYPE)))

    def _base(self) -> jnp.ndarray:
        return jnp.asarray(self.base_lrs, LR_DTYPE)

    # ---- the PyTorch / braintools API ---------------------------------------------------------
    def get_lr(self) -> list:
        """The learning rates at the current ``last_epoch``."""
        return list(self._rates(self.last_epoch.value))

    def get_last_lr(self) -> list:
        """The learning rates set by the last ``step()`` (floats outside a jitted function)."""
        return _as_floats(self.current_lrs.value)

    def step(self, epoch: Optional[int] = None) -> None:
        self.last_epoch.value = count_array(self.last_epoch.value + 1 if epoch is None else epoch)
        self._set(self._rates(self.last_epoch.value))

    def step_epoch(self) -> None:
        self.step()

    def _set(self, rates: jnp.ndarray) -> None:
        self.current_lrs.value = lr_array(rates)
        if self.optimizer is not None:
            self.optimizer._follow_scheduler(self)

    def attach_optimizer(self, optimizer) -> None:
        self.optimizer = optimizer
        optimizer._follow_scheduler(self)

    def apply(self, apply_fn: Callable[[Any], Any]) -> None:
        """Set the current rates to ``apply_fn(rates)`` (until the next ``step``)."""
        self._set(apply_fn(self.current_lrs.value))

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch.value, "base_lrs": list(self.base_lrs), "current_lrs": self.current_lrs.value}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = _lr_list(type(self).__name__, state["base_lrs"])
        self.last_epoch.value = count_array(state["last_epoch"])
        self._set(state.get("current_lrs", self._rates(self.last_epoch.value)))


def _as_floats(values) -> list:
    try:
        return [float(v) for v in np.asarray(values).reshape(-1)]
    except Exception:  # a tracer inside a jitted function: hand the traced values back
        return list(values)


def _f(epoch) -> jnp.ndarray:
    return jnp.asarray(epoch, LR_DTYPE)


class StepLR(LRScheduler):
    r"""``lr = base_lr * gamma ** (epoch // step_size)`` (PyTorch's ``StepLR``)."""

    def __init__(self, base_lr: Lr = 1e-3, step_size: int = 30, gamma: float = 0.1, last_epoch: int = 0):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = float(gamma)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        return self._base() * self.gamma ** _f(epoch // self.step_size)


class MultiStepLR(LRScheduler):
    r"""``lr = base_lr * gamma ** #{m in milestones: m <= epoch}`` (PyTorch's ``MultiStepLR``)."""

    def __init__(self, base_lr: Lr = 1e-3, milestones: Sequence[int] = (30, 60, 90), gamma: float = 0.1, last_epoch: int = 0):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"MultiStepLR: milestones must be increasing, got {list(milestones)}")
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        passed = jnp.sum(jnp.asarray(self.milestones, COUNT_DTYPE) <= epoch) if self.milestones else 0
        return self._base() * self.gamma ** _f(passed)


class ExponentialLR(LRScheduler):
    r"""``lr = base_lr * gamma ** epoch`` (PyTorch's ``ExponentialLR``)."""

    def __init__(self, base_lr: Lr = 1e-3, gamma: float = 0.95, last_epoch: int = 0):
        self.gamma = float(gamma)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        return self._base() * self.gamma ** _f(epoch)


class ExponentialDecayLR(LRScheduler):
    r"""optax's ``exponential_decay``: ``lr = base_lr * decay_rate ** (max(epoch - transition_begin, 0) /
    decay_steps)`` (the exponent floored when ``staircase``), bounded by ``end_value`` when given
    (from below when ``decay_rate < 1``, from above otherwise)."""

    def __init__(self, base_lr: Lr = 1e-3, decay_steps: int = 1000, decay_rate: float = 0.96, transition_begin: int = 0,
                 staircase: bool = False, end_value: Optional[float] = None, last_epoch: int = 0):
        self.decay_steps = _positive_int("ExponentialDecayLR", "decay_steps", decay_steps)
        self.decay_rate = float(decay_rate)
        self.transition_begin = int(transition_begin)
        self.staircase = bool(staircase)
        self.end_value = None if end_value is None else float(end_value)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        p = _f(jnp.maximum(epoch - self.transition_begin, 0)) / self.decay_steps
        lr = self._base() * self.decay_rate ** (jnp.floor(p) if self.staircase else p)
        if self.end_value is not None:
            lr = jnp.maximum(lr, self.end_value) if self.decay_rate < 1 else jnp.minimum(lr, self.end_value)
        return lr


def _cosine(high, low, progress):
    return low + (high - low) * (1 + jnp.cos(jnp.pi * progress)) / 2


class CosineAnnealingLR(LRScheduler):
    r"""PyTorch's closed form: ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2``.

    As in PyTorch the cosine goes on past ``T_max`` (the rate climbs back up); braintools 0.3.0
    holds it at ``eta_min`` instead.
    """

    def __init__(self, base_lr: Lr = 1e-3, T_max: int = 50, eta_min: float = 0, last_epoch: int = 0):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = float(eta_min)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        return _cosine(self._base(), self.eta_min, _f(epoch) / self.T_max)


class PolynomialLR(LRScheduler):
    r"""``lr = base_lr (1 - min(epoch, total_iters) / total_iters) ** power`` (PyTorch's ``PolynomialLR``)."""

    def __init__(self, base_lr: Lr = 1e-3, total_iters: int = 5, power: float = 1.0, last_epoch: int = 0):
        self.total_iters = _positive_int("PolynomialLR", "total_iters", total_iters)
        self.power = float(power)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        return self._base() * (1 - _f(jnp.minimum(epoch, self.total_iters)) / self.total_iters) ** self.power


class WarmupScheduler(LRScheduler):
    r"""Linear warmup: ``lr = warmup_start_lr + (base_lr - warmup_start_lr) min(epoch / warmup_epochs, 1)``."""

    def __init__(self, base_lr: Lr = 1e-3, warmup_epochs: int = 5, warmup_start_lr: float = 0.0, last_epoch: int = 0):
        if warmup_epochs < 0:
            raise ValueError(f"WarmupScheduler: warmup_epochs must be >= 0, got {warmup_epochs}")
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_start_lr = float(warmup_start_lr)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        alpha = jnp.minimum(_f(epoch) / self.warmup_epochs, 1.0) if self.warmup_epochs else 1.0
        return self.warmup_start_lr + (self._base() - self.warmup_start_lr) * alpha


class CyclicLR(LRScheduler):
    r"""PyTorch's ``CyclicLR``: with ``total = step_size_up + step_size_down``,
    ``cycle = floor(1 + epoch / total)``, ``x = 1 + epoch / total - cycle`` and ``r = step_size_up / total``,
    ``lr = base_lr + (max_lr - base_lr) * s * scale``, ``s = x / r`` rising, ``(x - 1) / (r - 1)`` falling;
    ``scale``: 1 (``triangular``), ``1 / 2 ** (cycle - 1)`` (``triangular2``), ``gamma ** epoch``
    (``exp_range``) or ``scale_fn(cycle)`` / ``scale_fn(epoch)`` per ``scale_mode``."""

    def __init__(self, base_lr: Lr = 1e-3, max_lr: Lr = 0.01, step_size_up: int = 2000, step_size_down: Optional[int] = None,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn: Optional[Callable] = None,
                 scale_mode: str = "cycle", last_epoch: int = 0):
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range', got {mode!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.step_size_up = _positive_int("CyclicLR", "step_size_up", step_size_up)
        self.step_size_down = self.step_size_up if step_size_down is None else _positive_int("CyclicLR", "step_size_down", step_size_down)
        self.mode, self.gamma, self.scale_fn = mode, float(gamma), scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        n = len(base_lr) if isinstance(base_lr, (list, tuple)) else 1
        self.max_lrs = _lr_list("CyclicLR", max_lr)
        if len(self.max_lrs) == 1:
            self.max_lrs = self.max_lrs * n
        super().__init__(base_lr, last_epoch)

    def _scale(self, cycle, epoch):
        if self.scale_fn is not None:
            return self.scale_fn(cycle if self.scale_mode == "cycle" else epoch)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1.0 / 2.0 ** (cycle - 1)
        return self.gamma ** epoch

    def lr_at(self, epoch):
        e = _f(epoch)
        total = self.step_size_up + self.step_size_down
        ratio = self.step_size_up / total
        cycle = jnp.floor(1 + e / total)
        x = 1.0 + e / total - cycle
        s = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        height = (jnp.asarray(self.max_lrs, LR_DTYPE) - self._base()) * s
        return self._base() + height * self._scale(cycle, e)


class OneCycleLR(LRScheduler):
    r"""braintools' ``OneCycleLR``: linearly from ``initial = max_lr / div_factor`` up to ``max_lr`` over
    the first ``w = pct_start * total_steps`` steps (epoch ``e <= w``), then down to
    ``max_lr / final_div_factor`` at ``total_steps`` by ``anneal_strategy`` (``'cos'``:
    ``final + (max_lr - final)(1 + cos(pi p))/2``, ``'linear'``), with ``p = (e - w) / (total_steps - w)``;
    held there after. (PyTorch's differs: a cosine warmup ending at step ``w - 1`` and a final rate of
    ``initial / final_div_factor``.)"""

    def __init__(self, max_lr: Lr = 0.01, total_steps: Optional[int] = None, epochs: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4, last_epoch: int = 0):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        self.total_steps = _positive_int("OneCycleLR", "total_steps", total_steps)
        if not 0 < pct_start < 1:
            raise ValueError(f"OneCycleLR: pct_start must be in (0, 1), got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.pct_start, self.anneal_strategy = float(pct_start), anneal_strategy
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self.max_lrs = _lr_list("OneCycleLR", max_lr)
        super().__init__([m / self.div_factor for m in self.max_lrs], last_epoch)

    def lr_at(self, epoch):
        e = _f(epoch)
        initial = self._base()
        peak = jnp.asarray(self.max_lrs, LR_DTYPE)
        final = jnp.asarray([m / self.final_div_factor for m in self.max_lrs], LR_DTYPE)
        warmup = self.pct_start * self.total_steps
        up = initial + jnp.minimum(e / warmup, 1.0) * (peak - initial)
        pct = jnp.clip((e - warmup) / ((1 - self.pct_start) * self.total_steps), 0.0, 1.0)
        factor = (1 + jnp.cos(jnp.pi * pct)) / 2 if self.anneal_strategy == "cos" else 1 - pct
        return jnp.where(e <= warmup, up, final + factor * (peak - final))


class LinearLR(LRScheduler):
    r"""``lr = base_lr (start_factor + (end_factor - start_factor) min(epoch, total_iters) / total_iters)``."""

    def __init__(self, base_lr: Lr = 1e-3, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = 0):
        if total_iters < 0:
            raise ValueError(f"LinearLR: total_iters must be >= 0, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), int(total_iters)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        if self.total_iters == 0:
            return self._base() * self.end_factor
        t = jnp.clip(_f(epoch) / self.total_iters, 0.0, 1.0)
        return self._base() * (self.start_factor + (self.end_factor - self.start_factor) * t)


class ConstantLR(LRScheduler):
    r"""``lr = base_lr * factor`` for ``epoch < total_iters``, then ``base_lr``."""

    def __init__(self, base_lr: Lr = 1e-3, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = 0):
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        return self._base() * jnp.where(epoch < self.total_iters, self.factor, 1.0)


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR (PyTorch's ``CosineAnnealingWarmRestarts``): cosine from ``base_lr`` to ``eta_min`` over
    periods ``T_0, T_0 T_mult, T_0 T_mult^2, ...``, restarting at each period's end."""

    def __init__(self, base_lr: Lr = 1e-3, T_0: int = 10, T_mult: int = 1, eta_min: float = 0, last_epoch: int = 0):
        self.T_0 = _positive_int("CosineAnnealingWarmRestarts", "T_0", T_0)
        self.T_mult = _positive_int("CosineAnnealingWarmRestarts", "T_mult", T_mult)
        self.eta_min = float(eta_min)
        super().__init__(base_lr, last_epoch)
        self.T_cur, self.T_i = OptimState(jnp.zeros((), LR_DTYPE)), OptimState(jnp.zeros((), LR_DTYPE))
        self._track_period()

    def _track_period(self) -> None:
        """``T_cur`` (epochs since the last restart) and ``T_i`` (this period's length), braintools'
        attributes and state_dict keys, kept with the epoch."""
        self.T_cur.value, self.T_i.value = (jnp.asarray(x, LR_DTYPE) for x in self._period(self.last_epoch.value))

    def step(self, epoch: Optional[int] = None) -> None:
        super().step(epoch)
        self._track_period()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "T_cur": self.T_cur.value, "T_i": self.T_i.value}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._track_period()

    def lr_at(self, epoch):
        t_cur, t_i = self._period(epoch)
        return _cosine(self._base(), self.eta_min, t_cur / t_i)

    def _period(self, epoch):
        e = _f(epoch)
        if self.T_mult == 1:
            t_cur, t_i = jnp.mod(e, self.T_0), jnp.asarray(self.T_0, LR_DTYPE)
        else:
            # Index of the period holding e: T_0 (T_mult^n - 1) / (T_mult - 1) <= e.
            n = jnp.floor(jnp.log(e / self.T_0 * (self.T_mult - 1) + 1) / math.log(self.T_mult))
            start = self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            # Rounding can put n one period off at an exact boundary; correct it with integers.
            n = jnp.where(e < start, n - 1, n)
            start = self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            t_i = self.T_0 * self.T_mult ** n
            n = jnp.where(e - start >= t_i, n + 1, n)
            start = self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            t_cur, t_i = e - start, self.T_0 * self.T_mult ** n
        return t_cur, jnp.asarray(t_i, LR_DTYPE)


class WarmupCosineSchedule(LRScheduler):
    r"""Linear warmup from ``warmup_start_lr`` to ``base_lr`` over ``warmup_steps``, then cosine to ``eta_min``
    at ``total_steps`` (held there after)."""

    def __init__(self, base_lr: Lr = 1e-3, warmup_steps: int = 1000, total_steps: int = 10000, warmup_start_lr: float = 0.0,
                 eta_min: float = 0.0, last_epoch: int = 0):
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"WarmupCosineSchedule: need 0 <= warmup_steps <= total_steps, got {warmup_steps}, {total_steps}")
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.warmup_start_lr, self.eta_min = float(warmup_start_lr), float(eta_min)
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        e = _f(epoch)
        warm = self.warmup_start_lr + (self._base() - self.warmup_start_lr) * jnp.clip(e / max(self.warmup_steps, 1), 0.0, 1.0)
        progress = jnp.clip((e - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        return jnp.where(e < self.warmup_steps, warm, _cosine(self._base(), self.eta_min, progress))


class PiecewiseConstantSchedule(LRScheduler):
    r"""``lr = values[i]`` with ``i = #{b in boundaries: b <= epoch}``: absolute rates, the same for every
    group, as braintools documents (``base_lr`` only sets the number of groups)."""

    def __init__(self, base_lr: Lr = 1e-3, boundaries: Optional[Sequence[int]] = None, values: Optional[Sequence[float]] = None,
                 last_epoch: int = 0):
        boundaries = [1000, 2000] if boundaries is None else [int(b) for b in boundaries]
        values = [1.0, 0.1, 0.01] if values is None else [float(v) for v in values]
        if len(boundaries) != len(values) - 1:
            raise ValueError("PiecewiseConstantSchedule: boundaries must have one element fewer than values")
        if boundaries != sorted(boundaries):
            raise ValueError(f"PiecewiseConstantSchedule: boundaries must be increasing, got {boundaries}")
        self.boundaries, self.values = boundaries, values
        super().__init__(base_lr, last_epoch)

    def lr_at(self, epoch):
        i = jnp.sum(jnp.asarray(self.boundaries, COUNT_DTYPE) <= epoch) if self.boundaries else 0
        return jnp.broadcast_to(jnp.asarray(self.values, LR_DTYPE)[i], (len(self.base_lrs),))


def _closed_form(name: str, schedulers: Sequence[LRScheduler]) -> list[LRScheduler]:
    for s in schedulers:
        if not isinstance(s, LRScheduler):
            raise TypeError(f"{name}: every scheduler must be an LRScheduler, got {type(s).__name__}")
        if isinstance(s, ReduceLROnPlateau):
            raise TypeError(f"{name}: ReduceLROnPlateau follows a metric, not the epoch, and cannot be composed")
    if not schedulers:
        raise ValueError(f"{name}: needs at least one scheduler")
    return list(schedulers)


class ChainedScheduler(LRScheduler):
    r"""Several schedules at once: ``lr = base_lr * prod_i lr_i(epoch) / base_lr_i`` (each scheduler's factor),
    with ``base_lr`` the first scheduler's."""

    def __init__(self, schedulers: Sequence[LRScheduler]):
        self.schedulers = _closed_form("ChainedScheduler", schedulers)
        super().__init__(self.schedulers[0].base_lrs, self.schedulers[0].last_epoch.value)

    def lr_at(self, epoch):
        lr = self._base()
        for s in self.schedulers:
            base = s._base()
            lr = lr * jnp.where(base != 0, s.lr_at(epoch) / jnp.where(base != 0, base, 1), 0.0)
        return lr


class SequentialLR(LRScheduler):
    r"""Scheduler ``i`` from ``milestones[i - 1]`` on, run from its own epoch 0 (PyTorch's ``SequentialLR``)."""

    def __init__(self, schedulers: Sequence[LRScheduler], milestones: Sequence[int], last_epoch: int = 0):
        self.schedulers = _closed_form("SequentialLR", schedulers)
        if len(self.schedulers) != len(milestones) + 1:
            raise ValueError("SequentialLR: needs len(milestones) + 1 schedulers")
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {list(milestones)}")
        self.milestones = [int(m) for m in milestones]
        super().__init__(self.schedulers[0].base_lrs, last_epoch)

    def lr_at(self, epoch):
        lr = self.schedulers[0].lr_at(epoch)
        for m, s in zip(self.milestones, self.schedulers[1:]):
            lr = jnp.where(epoch >= m, s.lr_at(epoch - m), lr)
        return lr


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the rates by ``factor`` (not below ``min_lr``) when the metric passed to ``step(metric)`` has
    not improved for more than ``patience`` steps, then wait ``cooldown`` steps (PyTorch's semantics).

    Improvement (``mode='min'``): ``metric < best (1 - threshold)`` (``'rel'``) or ``< best - threshold``
    (``'abs'``); mirrored for ``'max'``. A reduction smaller than ``eps`` is skipped. Written with
    ``jnp.where``, so ``step(metric)`` also works inside a jitted function.
    """

    def __init__(self, base_lr: Lr = 1e-3, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: Lr = 0,
                 eps: float = 1e-8, last_epoch: int = 0):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode, self.cooldown, self.eps = float(threshold), threshold_mode, int(cooldown), float(eps)
        self.min_lrs = _lr_list("ReduceLROnPlateau", min_lr)
        worst = jnp.inf if mode == "min" else -jnp.inf
        self.best = OptimState(jnp.asarray(worst, LR_DTYPE))
        self.num_bad_epochs = OptimState(count_array(0))
        self.cooldown_counter = OptimState(count_array(0))
        super().__init__(base_lr, last_epoch)
        if len(self.min_lrs) == 1:
            self.min_lrs = self.min_lrs * len(self.base_lrs)

    def lr_at(self, epoch):
        del epoch  # no closed form: the rates live in current_lrs
        return self.current_lrs.value if hasattr(self, "current_lrs") else self._base()

    def _better(self, metric, best):
        if self.mode == "min":
            return metric < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return metric > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric: Any = None, epoch: Optional[int] = None) -> None:  # type: ignore[override]
        if metric is None:
            raise TypeError("ReduceLROnPlateau.step(metric): the metric to watch is required")
        metric = jnp.asarray(metric, LR_DTYPE)
        self.last_epoch.value = count_array(self.last_epoch.value + 1 if epoch is None else epoch)
        better = self._better(metric, self.best.value)
        self.best.value = jnp.where(better, metric, self.best.value)
        bad = jnp.where(better, 0, self.num_bad_epochs.value + 1)
        cooling = self.cooldown_counter.value > 0
        bad = jnp.where(cooling, 0, bad).astype(COUNT_DTYPE)
        cooldown = jnp.where(cooling, self.cooldown_counter.value - 1, self.cooldown_counter.value)
        reduce = bad > self.patience
        old = self.current_lrs.value
        new = jnp.maximum(old * self.factor, jnp.asarray(self.min_lrs, LR_DTYPE))
        new = jnp.where(old - new > self.eps, new, old)
        self.cooldown_counter.value = jnp.where(reduce, self.cooldown, cooldown).astype(COUNT_DTYPE)
        self.num_bad_epochs.value = jnp.where(reduce, 0, bad).astype(COUNT_DTYPE)
        self._set(jnp.where(reduce, new, old))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best": self.best.value, "num_bad_epochs": self.num_bad_epochs.value,
                "cooldown_counter": self.cooldown_counter.value}

    def load_state_dict(self, state: dict) -> None:
        self.best.value = jnp.asarray(state["best"], LR_DTYPE)
        self.num_bad_epochs.value = count_array(state["num_bad_epochs"])
        self.cooldown_counter.value = count_array(state["cooldown_counter"])
        super().load_state_dict(state)
