"""MoMo and MoMo-Adam (``optax.contrib``'s): Polyak-type step sizes from a model of the loss
(``cpp/functors/momo.h``).

On the elementwise engine: each step is at most one reduce call and one update call for the whole
pytree. Scalar state is kept in f32 (f64 with f64 params); optax keeps it in the params' lowest
dtype, which for bf16 params rounds these sums to 8 bits.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fromax import _engine
from fromax._optimizer_base import FOLDS_ALL, Leaves, kernels_for, power, scalar_dtype, transformation, value_at
from fromax._eager import eager_jit
from fromax._validate import BETA, FINITE, FLAG, NONNEGATIVE, checked

Array = jax.Array


class MomoState(NamedTuple):
    """State of :func:`momo` (``optax.contrib.MomoState``'s)."""

    exp_avg: Any
    barf: Array
    gamma: Array
    lb: Array
    count: Array


def _polyak_step(barf, gamma, iprod, norm, alpha, weight_decay, lb, lower_bound, adapt_lower_bound: bool, bc1):
    """MoMo's step size and next lower bound (optax.contrib's math); ``bc1 = 1 - b1^t`` for
    MoMo-Adam, 1 for MoMo (where every factor and division by it is exact)."""
    decay = 1 + alpha * weight_decay
    if adapt_lower_bound:
        cap = decay * (barf - gamma) + iprod
        lb = jnp.where(cap < decay * bc1 * lb, jnp.maximum(cap / (2 * bc1 * decay), lower_bound), lb)
    t1 = jnp.maximum(decay * (barf - bc1 * lb - gamma) + iprod, 0.0) / norm
    t1 = jnp.where(norm <= jnp.finfo(float).eps, 0.0, t1)
    tau = jnp.minimum(alpha / bc1, t1)
    new_lb = jnp.maximum((barf + iprod - gamma - 0.5 * tau * norm) / bc1, lower_bound) if adapt_lower_bound else None
    return tau, -(alpha * weight_decay) / decay, new_lb


def _require_value(value, who: str):
    if value is None:
        raise ValueError(f"fromax.{who} needs the current loss: update(grads, state, params, value=loss) (see jax.value_and_grad)")


@eager_jit
@checked(learning_rate=NONNEGATIVE, beta=BETA, lower_bound=FINITE, weight_decay=NONNEGATIVE, adapt_lower_bound=FLAG)
def momo(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower, 2023), ``optax.contrib.momo``: SGD with
    momentum and a Polyak step size from the loss ``value`` (pass ``value=`` to ``update``).

    With :math:`\beta_t = 0` on the first step, :math:`\beta` after, :math:`\alpha = \gamma_t`:

    .. math::
        \bar f \leftarrow \beta_t\bar f + (1-\beta_t) f,\ m \leftarrow \beta_t m + (1-\beta_t) g,\
        \Gamma \leftarrow \beta_t \Gamma + (1-\beta_t)\langle g, x\rangle\\
        \tau = \min\Big(\alpha, \frac{\max((1+\alpha\lambda)(\bar f - f_* - \Gamma) + \langle m, x\rangle, 0)}{\|m\|^2}\Big),\quad
        \Delta x = -\frac{\alpha\lambda}{1+\alpha\lambda} x - \tau m

    Examples
    --------
    >>> import jax, jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> loss = lambda p: jnp.sum(p["w"] ** 2)
    >>> tx = fromax.momo()
    >>> state = tx.init(params)
    >>> value, grads = jax.value_and_grad(loss)(params)
    >>> params, state = fromax.step(tx, grads, state, params, value=value)
    """
    def init_fn(params: Any) -> MomoState:
        dtype = scalar_dtype(params)
        z = lambda: jnp.zeros([], dtype)  # noqa: E731 - a buffer per field, so the state can be donated
        return MomoState(optax.tree.zeros_like(params), z(), z(), jnp.asarray(lower_bound, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: MomoState, params: Any, delta: _engine.Output, *, value: Any = None, **extra: Any):
        _require_value(value, "momo")
        lv = Leaves(grads, params, "momo")
        kernels = kernels_for(backend, "momo_sums", "momo")
        bt = jnp.where(state.count == 0, 0.0, beta).astype(state.barf.dtype)
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, state.barf.dtype)
        m = lv.flat(state.exp_avg, "exp_avg")
        sums = _engine.reduce("momo_sums", _engine.rows("momo_sums", lv.n, lv.dtype, bt=bt), [lv.g, lv.p, m], kernels=kernels)
        named = _engine.sums_by_name("momo_sums", sums)
        gp, norm, iprod = (jnp.sum(x).astype(barf.dtype) for x in (named.gp, named.mm, named.mp))
        gamma = bt * state.gamma + (1 - bt) * gp
        alpha = value_at(learning_rate, state.count)
        tau, cp, new_lb = _polyak_step(barf, gamma, iprod, norm, alpha, weight_decay, state.lb, lower_bound, adapt_lower_bound, 1.0)
        coeffs = _engine.rows("momo", lv.n, lv.dtype, bt=bt, cp=cp, tau=tau)
        out, m = _engine.update("momo", coeffs, [lv.g, lv.p, m], kernels=kernels, delta=delta, after=sums)
        new_lb = state.lb if new_lb is None else new_lb.astype(state.lb.dtype)
        return lv.tree(out), MomoState(lv.tree(m), barf, gamma, new_lb, optax.safe_increment(state.count))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


class MomoAdamState(NamedTuple):
    """State of :func:`momo_adam` (``optax.contrib.MomoAdamState``'s)."""

    exp_avg: Any
    exp_avg_sq: Any
    barf: Array
    gamma: Array
    lb: Array
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, lower_bound=FINITE, weight_decay=NONNEGATIVE, adapt_lower_bound=FLAG)
def momo_adam(
    learning_rate: optax.ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""MoMo-Adam, ``optax.contrib.momo_adam``: MoMo's Polyak step on Adam's preconditioned momentum.

    With :math:`D = \epsilon + \sqrt{v/(1-\beta_2^t)}`, :math:`\rho = 1 - \beta_1^t`:

    .. math::
        \tau = \min\Big(\frac{\alpha}{\rho}, \frac{\max((1+\alpha\lambda)(\bar f - \rho f_* - \Gamma)
        + \langle m, x\rangle, 0)}{\langle m, m/D\rangle}\Big),\quad
        \Delta x = -\frac{\alpha\lambda}{1+\alpha\lambda} x - \tau\, m / D

    Examples
    --------
    >>> import jax, jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> loss = lambda p: jnp.sum(p["w"] ** 2)
    >>> tx = fromax.momo_adam()
    >>> state = tx.init(params)
    >>> value, grads = jax.value_and_grad(loss)(params)
    >>> params, state = fromax.step(tx, grads, state, params, value=value)
    """
    def init_fn(params: Any) -> MomoAdamState:
        dtype = scalar_dtype(params)
        z = lambda: jnp.zeros([], dtype)  # noqa: E731 - a buffer per field, so the state can be donated
        zeros = optax.tree.zeros_like
        return MomoAdamState(zeros(params), zeros(params), z(), z(), jnp.asarray(lower_bound, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: MomoAdamState, params: Any, delta: _engine.Output, *, value: Any = None, **extra: Any):
        _require_value(value, "momo_adam")
        lv = Leaves(grads, params, "momo_adam")
        kernels = kernels_for(backend, "momo_adam_sums", "momo_adam")
        count_inc = optax.safe_increment(state.count)
        dtype = state.barf.dtype
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype)
        bc2 = jnp.asarray(1 - power(b2, count_inc), dtype)
        m, v = lv.flat(state.exp_avg, "exp_avg"), lv.flat(state.exp_avg_sq, "exp_avg_sq")
        sums = _engine.reduce("momo_adam_sums", _engine.rows("momo_adam_sums", lv.n, lv.dtype, b1=b1, b2=b2, eps=eps, bc2=bc2), [lv.g, lv.p, m, v], kernels=kernels)
        named = _engine.sums_by_name("momo_adam_sums", sums)
        norm, gp, iprod = (jnp.sum(x).astype(dtype) for x in (named.mm_pre, named.gp, named.mp))
        gamma = b1 * state.gamma + (1 - b1) * gp
        alpha = value_at(learning_rate, state.count)
        bc1 = jnp.asarray(1 - power(b1, count_inc), dtype)
        tau, cp, new_lb = _polyak_step(barf, gamma, iprod, norm, alpha, weight_decay, state.lb, lower_bound, adapt_lower_bound, bc1)
        coeffs = _engine.rows("momo_adam", lv.n, lv.dtype, b1=b1, b2=b2, eps=eps, bc2=bc2, cp=cp, tau=tau)
        out, m, v = _engine.update("momo_adam", coeffs, [lv.g, lv.p, m, v], kernels=kernels, delta=delta, after=sums)
        new_lb = state.lb if new_lb is None else new_lb.astype(dtype)
        return lv.tree(out), MomoAdamState(lv.tree(m), lv.tree(v), barf, gamma, new_lb, count_inc)

    return transformation(init_fn, apply, folds=FOLDS_ALL)
