"""DoG and DoWG (``optax.contrib``'s): global step sizes from the distance travelled and the
gradient norms (``cpp/functors/distance.h``).

On the elementwise engine: each step is at most one reduce call and one update call for the whole
pytree. Scalar state is kept in f32 (f64 with f64 params); optax keeps it in the params' lowest
dtype, which for bf16 params rounds these sums to 8 bits.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from fromax import _engine
from fromax._l2 import hypot
from fromax._optimizer_base import FOLDS_ALL, Leaves, kernels_for, scalar_dtype, transformation, value_at
from fromax._eager import eager_jit
from fromax.adam import MaskOrFn
from fromax._validate import INIT_STEP, MASK, NONNEGATIVE, checked, leaves_with_paths

Array = jax.Array


class DoGState(NamedTuple):
    """State of :func:`dog` (``optax.contrib.DoGState``'s fields, plus the step count for a
    learning-rate schedule)."""

    is_init_step: Array
    init_params: Any
    max_dist: Array
    sum_sq_norm_grads: Array
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, init_step=INIT_STEP, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, mask=MASK)
def dog(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], Any] = ("heuristic", 1e-6),
    eps: float = 1e-8,
    weight_decay: Optional[float] = None,
    mask: MaskOrFn = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""DoG, "Distance over Gradients" (Ivgi, Hinder & Carmon, 2023), ``optax.contrib.dog``.

    With :math:`u_t = g_t + \lambda x_t` (``weight_decay``, where ``mask``):

    .. math::
        \bar r_t = \max(\bar r_{t-1}, \|x_t - x_0\|),\quad G_t = G_{t-1} + \|u_t\|^2,\quad
        \Delta x = -\eta_t \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, u_t

    norms over the whole pytree. :math:`\bar r_0` from ``init_step``: ``("distance", r)``,
    ``("heuristic", a)``: :math:`a (1 + \|x_0\|)`, or ``("learning_rate", s)``: the first step size
    is ``s``. One pass for :math:`\|x - x_0\|^2, \|u\|^2`, one for the update.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.dog()
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    kind, value = init_step

    def init_fn(params: Any) -> DoGState:
        dtype = scalar_dtype(params)
        if kind == "distance":
            r = jnp.asarray(value, dtype)
        elif kind == "heuristic":
            _, leaves, _ = leaves_with_paths(params, "parameter")
            norms = _engine.reduce("norm", _engine.rows("norm", len(leaves), dtype), [leaves], kernels=kernels_for(backend, "norm"))[:, 0]
            r = value * (1 + hypot(norms)).astype(dtype)
        else:
            r = jnp.zeros([], dtype)
        params0 = jax.tree.map(jnp.copy, params)
        return DoGState(jnp.asarray(True), params0, r, jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DoGState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "dog")
        kernels = kernels_for(backend, "distance_norms", "scaled_sgd")
        wd = lv.decay(weight_decay, mask, params, state.count)
        streams = [lv.g, lv.p, lv.flat(state.init_params, "init_params")]
        sums = _engine.reduce("distance_norms", _engine.rows("distance_norms", lv.n, lv.dtype, wd=wd), streams, kernels=kernels)
        named = _engine.sums_by_name("distance_norms", sums)
        max_dist = jnp.maximum(state.max_dist, hypot(named.d_norm).astype(state.max_dist.dtype))
        u_norm = hypot(named.u_norm).astype(state.sum_sq_norm_grads.dtype)
        sum_sq = state.sum_sq_norm_grads + u_norm * u_norm  # the state is optax's: a sum of squares
        eta = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            eta = jnp.where(state.is_init_step, value, eta)
        coeffs = _engine.rows("scaled_sgd", lv.n, lv.dtype, wd=wd, scale=-value_at(learning_rate, state.count) * eta)
        (out,) = _engine.update("scaled_sgd", coeffs, streams[:2], kernels=kernels, delta=delta)
        new_state = DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq, optax.safe_increment(state.count))
        return lv.tree(out), new_state

    return transformation(init_fn, apply, folds=FOLDS_ALL)


class DoWGState(NamedTuple):
    """State of :func:`dowg` (``optax.contrib.DoWGState``'s fields, plus the step count)."""

    init_params: Any
    weighted_sq_norm_grads: Array
    estim_sq_dist: Array
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, init_estim_sq_dist=NONNEGATIVE, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, mask=MASK)
def dowg(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    init_estim_sq_dist: Optional[float] = None,
    eps: float = 1e-4,
    weight_decay: Optional[float] = None,
    mask: MaskOrFn = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""DoWG, "Distance over Weighted Gradients" (Khaled, Mishchenko & Jin, 2023), ``optax.contrib.dowg``.

    With :math:`u_t = g_t + \lambda x_t` and norms over the whole pytree:

    .. math::
        \bar r^2_t = \max(\bar r^2_{t-1}, \|x_t - x_0\|^2),\quad
        v_t = v_{t-1} + \bar r^2_t \|u_t\|^2,\quad
        \Delta x = -\eta_t \frac{\bar r^2_t}{\sqrt{v_t} + \epsilon}\, u_t

    :math:`\bar r^2_0` = ``init_estim_sq_dist`` (default ``eps``).

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.dowg()
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    def init_fn(params: Any) -> DoWGState:
        dtype = scalar_dtype(params)
        r2 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(jax.tree.map(jnp.copy, params), jnp.zeros([], dtype), jnp.asarray(r2, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DoWGState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "dowg")
        kernels = kernels_for(backend, "distance_norms", "scaled_sgd")
        wd = lv.decay(weight_decay, mask, params, state.count)
        streams = [lv.g, lv.p, lv.flat(state.init_params, "init_params")]
        sums = _engine.reduce("distance_norms", _engine.rows("distance_norms", lv.n, lv.dtype, wd=wd), streams, kernels=kernels)
        named = _engine.sums_by_name("distance_norms", sums)
        d_norm, u_norm = (hypot(x).astype(state.estim_sq_dist.dtype) for x in (named.d_norm, named.u_norm))
        r2 = jnp.maximum(state.estim_sq_dist, d_norm * d_norm)  # squared states, as optax's
        weighted = r2 * (u_norm * u_norm) + state.weighted_sq_norm_grads
        eta = r2 / (jnp.sqrt(weighted) + eps)
        coeffs = _engine.rows("scaled_sgd", lv.n, lv.dtype, wd=wd, scale=-value_at(learning_rate, state.count) * eta)
        (out,) = _engine.update("scaled_sgd", coeffs, streams[:2], kernels=kernels, delta=delta)
        return lv.tree(out), DoWGState(state.init_params, weighted, r2, optax.safe_increment(state.count))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


