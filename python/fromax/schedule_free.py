"""Schedule-Free (Defazio et al., 2024), ``optax.contrib.schedule_free`` and its fused SGD/AdamW."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from fromax import _engine
from fromax._optimizer_base import FOLDS_ALL, Leaves, base_update, kernels_for, scalar_dtype, transformation, value_at
from fromax._eager import eager_jit
from fromax._validate import BETA, COUNT, FINITE, FLOAT_DTYPE, NONNEGATIVE, TRANSFORMATION, checked

Array = jax.Array


class ScheduleFreeState(NamedTuple):
    """State of the Schedule-Free transformations (``optax.contrib.ScheduleFreeState``'s fields).
    For :func:`schedule_free_adamw` ``base_optimizer_state`` holds the second moment ``nu``."""

    b1: Array
    weight_sum: Array
    step_count: Array
    max_lr: Array
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    r"""The averaged iterate :math:`x = (y - (1-\beta_1) z) / \beta_1` to evaluate the model at (same
    as ``optax.contrib.schedule_free_eval_params``; accepts either library's state)."""
    b1, z = getattr(state, "b1", None), getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError("fromax.schedule_free_eval_params requires a ScheduleFreeState as input")
    return jax.tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, z)


def _weights(state: ScheduleFreeState, lr, weight_lr_power):
    """``(max_lr, weight_sum, ck)``: the averaging weight of this step, as optax computes it."""
    max_lr = jnp.maximum(state.max_lr, lr)
    weight = max_lr**weight_lr_power
    total = state.weight_sum + weight
    ck = jnp.where(jnp.isnan(weight) | jnp.isnan(total), jnp.full(weight.shape, jnp.nan), jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf))
    return max_lr, total, ck


def _init(params: Any, b1, state_dtype, base_state) -> ScheduleFreeState:
    dtype = scalar_dtype(params)
    z = optax.tree.cast(params, dtype=state_dtype) if state_dtype is not None else params
    z = jax.tree.map(jnp.copy, z)
    return ScheduleFreeState(jnp.asarray(b1, dtype), jnp.zeros([], dtype), jnp.ones([], jnp.int32), jnp.zeros([], dtype), base_state, z)


def _lr_at(learning_rate, count, dtype):
    return jnp.asarray(value_at(learning_rate, count), dtype)


@eager_jit
@checked(base_optimizer=TRANSFORMATION, learning_rate=NONNEGATIVE, b1=BETA, weight_lr_power=FINITE, state_dtype=FLOAT_DTYPE)
def schedule_free(
    base_optimizer: optax.GradientTransformation,
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    weight_lr_power: float = 2.0,
    state_dtype: Optional[Any] = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-Free wrapper of any base optimizer, ``optax.contrib.schedule_free``.

    The params are :math:`y`; the base optimizer's update :math:`u` moves :math:`z`, and with
    :math:`c_t = \gamma_{max}^{p} / \sum_{k\le t} \gamma_{max,k}^{p}`:

    .. math::
        z' = z + u,\quad x = (1-c_t)\frac{y - (1-\beta_1) z}{\beta_1} + c_t z',\quad
        y' = \beta_1 x + (1-\beta_1) z'

    One fused pass over :math:`y, z, u` writes :math:`z'` and :math:`y'`. Evaluate at
    :func:`schedule_free_eval_params`. :func:`schedule_free_adamw`/:func:`schedule_free_sgd` fuse
    the base step in the same pass.

    Examples
    --------
    >>> import jax.numpy as jnp, optax, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.schedule_free(optax.sgd(0.1), learning_rate=0.1)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    >>> eval_params = fromax.schedule_free_eval_params(state, params)
    """
    base = optax.with_extra_args_support(base_optimizer)

    def init_fn(params: Any) -> ScheduleFreeState:
        return _init(params, b1, state_dtype, base.init(params))

    def apply(grads: Any, state: ScheduleFreeState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "schedule_free")
        lr = _lr_at(learning_rate, state.step_count, state.max_lr.dtype)
        max_lr, total, ck = _weights(state, lr, weight_lr_power)
        base_updates, base_state = base_update(base, delta)(grads, state.base_optimizer_state, params, **extra)
        coeffs = _engine.rows("schedule_free", lv.n, lv.dtype, b1=b1, ck=ck)
        streams = [lv.p, lv.flat(state.z, "z"), lv.flat(base_updates, "base update")]
        out, z = _engine.update("schedule_free", coeffs, streams, kernels=kernels_for(backend, "schedule_free"), delta=delta)
        new_state = ScheduleFreeState(state.b1, total, optax.safe_increment(state.step_count), max_lr, base_state, lv.tree(z))
        return lv.tree(out), new_state

    return transformation(init_fn, apply)


def _warmup(learning_rate, warmup_steps):
    if warmup_steps is None:
        return learning_rate
    return optax.warmup_constant_schedule(init_value=0, peak_value=learning_rate, warmup_steps=warmup_steps)


@eager_jit
@checked(learning_rate=NONNEGATIVE, warmup_steps=COUNT, b1=BETA, weight_decay=NONNEGATIVE, weight_lr_power=FINITE, state_dtype=FLOAT_DTYPE)
def schedule_free_sgd(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    warmup_steps: Optional[int] = None,
    b1: float = 0.9,
    weight_decay: Optional[float] = None,
    weight_lr_power: float = 2.0,
    state_dtype: Optional[Any] = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-Free SGD, ``optax.contrib.schedule_free_sgd``, fused: the base step
    :math:`u = -\gamma_t (g + \lambda y)` and the Schedule-Free interpolation (:func:`schedule_free`)
    in one pass over :math:`g, y, z`.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.schedule_free_sgd(0.1)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    lr_fn = _warmup(learning_rate, warmup_steps)

    def init_fn(params: Any) -> ScheduleFreeState:
        return _init(params, b1, state_dtype, optax.EmptyState())

    def apply(grads: Any, state: ScheduleFreeState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "schedule_free_sgd")
        dtype = state.max_lr.dtype
        max_lr, total, ck = _weights(state, _lr_at(lr_fn, state.step_count, dtype), weight_lr_power)
        # The base optimizer's schedule counts its own steps from 0 (the optax chain's does too).
        base_lr = _lr_at(lr_fn, state.step_count - 1, dtype)
        coeffs = _engine.rows("schedule_free_sgd", lv.n, lv.dtype, b1=b1, ck=ck, lr=base_lr, wd=0.0 if weight_decay is None else weight_decay)
        out, z = _engine.update("schedule_free_sgd", coeffs, [lv.g, lv.p, lv.flat(state.z, "z")], kernels=kernels_for(backend, "schedule_free_sgd"), delta=delta)
        new_state = ScheduleFreeState(state.b1, total, optax.safe_increment(state.step_count), max_lr, state.base_optimizer_state, lv.tree(z))
        return lv.tree(out), new_state

    return transformation(init_fn, apply, folds=FOLDS_ALL)


class ScheduleFreeAdamWBase(NamedTuple):
    """The base step's state in :func:`schedule_free_adamw`: the second moment."""

    nu: Any


@eager_jit
@checked(learning_rate=NONNEGATIVE, warmup_steps=COUNT, b1=BETA, b2=BETA, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, weight_lr_power=FINITE, state_dtype=FLOAT_DTYPE)
def schedule_free_adamw(
    learning_rate: optax.ScalarOrSchedule = 0.0025,
    warmup_steps: Optional[int] = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    weight_lr_power: float = 2.0,
    state_dtype: Optional[Any] = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Schedule-Free AdamW, ``optax.contrib.schedule_free_adamw``, fused: the base step

    .. math::
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        u = -\gamma_t \big(g / (\sqrt{v / (1-\beta_2^t)} + \epsilon) + \lambda y\big)

    and the Schedule-Free interpolation (:func:`schedule_free`) in one pass over :math:`g, y, z, v`.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.schedule_free_adamw(1e-3)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    lr_fn = _warmup(learning_rate, warmup_steps)

    def init_fn(params: Any) -> ScheduleFreeState:
        return _init(params, b1, state_dtype, ScheduleFreeAdamWBase(optax.tree.zeros_like(params)))

    def apply(grads: Any, state: ScheduleFreeState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "schedule_free_adamw")
        dtype = state.max_lr.dtype
        max_lr, total, ck = _weights(state, _lr_at(lr_fn, state.step_count, dtype), weight_lr_power)
        base_lr = _lr_at(lr_fn, state.step_count - 1, dtype)
        bc2 = 1 - b2**state.step_count  # the base's own step count, incremented: equal to step_count
        coeffs = _engine.rows("schedule_free_adamw", lv.n, lv.dtype, b1=b1, ck=ck, lr=base_lr, wd=weight_decay, b2=b2, eps=eps, bc2=bc2)
        streams = [lv.g, lv.p, lv.flat(state.z, "z"), lv.flat(state.base_optimizer_state.nu, "nu")]
        out, z, nu = _engine.update("schedule_free_adamw", coeffs, streams, kernels=kernels_for(backend, "schedule_free_adamw"), delta=delta)
        new_state = ScheduleFreeState(state.b1, total, optax.safe_increment(state.step_count), max_lr, ScheduleFreeAdamWBase(lv.tree(nu)), lv.tree(z))
        return lv.tree(out), new_state

    return transformation(init_fn, apply, folds=FOLDS_ALL)
