"""Prodigy and D-Adapt AdamW (``optax.contrib``'s): a D estimate of the distance to the solution from
global sums, driving an Adam step (``cpp/functors/dadapt.h``).

On the elementwise engine: each step is at most one reduce call and one update call for the whole
pytree. Scalar state is kept in f32 (f64 with f64 params); optax keeps it in the params' lowest
dtype, which for bf16 params rounds these sums to 8 bits.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from fromax import _engine
from fromax._optimizer_base import FOLDS_ALL, Leaves, kernels_for, power, scalar_dtype, transformation, value_at
from fromax._eager import eager_jit
from fromax._validate import BETA, FLAG, NONNEGATIVE, checked, pair

Array = jax.Array


class ProdigyState(NamedTuple):
    """State of :func:`prodigy` (``optax.contrib.ProdigyState``'s)."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: Array
    numerator_weighted: Array
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, betas=pair(BETA), beta3=BETA, eps=NONNEGATIVE, estim_lr0=NONNEGATIVE, estim_lr_coef=NONNEGATIVE, weight_decay=NONNEGATIVE, safeguard_warmup=FLAG)
def prodigy(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    beta3: Optional[float] = None,
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    estim_lr_coef: float = 1.0,
    weight_decay: float = 0.0,
    safeguard_warmup: bool = False,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Prodigy (Mishchenko & Defazio, 2023), ``optax.contrib.prodigy``: AdamW whose step size is a
    D estimate grown from below.

    With :math:`d` the estimate, :math:`\gamma_t` the schedule, :math:`\hat\gamma = d\gamma_t
    \sqrt{1-\beta_2^t}/(1-\beta_1^t)` and :math:`\tilde g = d g`:

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1)\tilde g,\ v \leftarrow \beta_2 v + (1-\beta_2)\tilde g^2,\
        s \leftarrow \beta_3 s + \hat\gamma \tilde g / d_0\\
        r \leftarrow \beta_3 r + (d/d_0)\hat\gamma \langle g, x_0 - x\rangle,\quad
        d \leftarrow \max(d, c\, r / \|s\|_1)\\
        \Delta x = -\lambda\hat\gamma x - \hat\gamma\, m / (\sqrt v + d\epsilon)

    (``safeguard_warmup``: :math:`s` accumulates :math:`d\tilde g/d_0`). One pass computes
    :math:`\langle g, x_0 - x\rangle` and :math:`\|s\|_1`, one writes :math:`m, v, s, x`.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.prodigy()
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    beta1, beta2 = betas
    beta3 = beta2**0.5 if beta3 is None else beta3

    def init_fn(params: Any) -> ProdigyState:
        dtype = scalar_dtype(params)
        zeros = optax.tree.zeros_like
        return ProdigyState(zeros(params), zeros(params), zeros(params), jax.tree.map(jnp.copy, params),
                            jnp.asarray(estim_lr0, dtype), jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: ProdigyState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "prodigy")
        kernels = kernels_for(backend, "prodigy_sums", "prodigy")
        count_inc = optax.safe_increment(state.count)
        d = state.estim_lr
        bc = (1 - power(beta2, count_inc)) ** 0.5 / (1 - power(beta1, count_inc))
        dlr = (d * value_at(learning_rate, state.count) * bc).astype(d.dtype)
        k = d if safeguard_warmup else dlr
        m, v, s, p0 = (lv.flat(x, name) for x, name in zip(state[:4], ("exp_avg", "exp_avg_sq", "grad_sum", "params0")))
        sums = _engine.reduce("prodigy_sums", _engine.rows("prodigy_sums", lv.n, lv.dtype, beta3=beta3, d=d, k=k, d0=estim_lr0), [lv.g, lv.p, s, p0], kernels=kernels)
        named = _engine.sums_by_name("prodigy_sums", sums)
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * jnp.sum(named.g_dist).astype(d.dtype)
        d_new = jnp.maximum(d, estim_lr_coef * numerator / jnp.sum(named.s_abs).astype(d.dtype))
        coeffs = _engine.rows("prodigy", lv.n, lv.dtype, b1=beta1, b2=beta2, beta3=beta3, d=d, k=k, d0=estim_lr0, dlr=dlr, wd=weight_decay, d_eps=d_new * eps)
        out, m, v, s = _engine.update("prodigy", coeffs, [lv.g, lv.p, m, v, s], kernels=kernels, delta=delta, after=sums)
        t = lv.tree
        return t(out), ProdigyState(t(m), t(v), t(s), state.params0, d_new, numerator, count_inc)

    return transformation(init_fn, apply, folds=FOLDS_ALL)


class DAdaptAdamWState(NamedTuple):
    """State of :func:`dadapt_adamw` (``optax.contrib.DAdaptAdamWState``'s)."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: Array
    numerator_weighted: Array
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, betas=pair(BETA), eps=NONNEGATIVE, estim_lr0=NONNEGATIVE, weight_decay=NONNEGATIVE)
def dadapt_adamw(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    estim_lr0: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""D-Adaptation AdamW (Defazio & Mishchenko, 2023), ``optax.contrib.dadapt_adamw``.

    With :math:`\hat\gamma = d\gamma_t\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and :math:`\sqrt{\beta_2}` =: b:

    .. math::
        r \leftarrow b\, r + (1-b)\hat\gamma \langle g, s / (\sqrt v + \epsilon)\rangle
        \ (\text{old } s, v),\quad
        m \leftarrow \beta_1 m + (1-\beta_1)\hat\gamma g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2,\
        s \leftarrow b\,s + (1-b)\hat\gamma g\\
        d \leftarrow \max(d, r / ((1-b)\|s\|_1)),\qquad
        \Delta x = -\lambda\hat\gamma x - m / (\sqrt v + \epsilon)

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.dadapt_adamw()
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    beta1, beta2 = betas

    def init_fn(params: Any) -> DAdaptAdamWState:
        dtype = scalar_dtype(params)
        zeros = optax.tree.zeros_like
        return DAdaptAdamWState(zeros(params), zeros(params), zeros(params), jnp.asarray(estim_lr0, dtype), jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DAdaptAdamWState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "dadapt_adamw")
        kernels = kernels_for(backend, "dadapt_sums", "dadapt")
        sb2 = beta2**0.5
        count_inc = optax.safe_increment(state.count)
        bc = (1 - power(beta2, count_inc)) ** 0.5 / (1 - power(beta1, count_inc))
        dlr = (state.estim_lr * value_at(learning_rate, state.count) * bc).astype(state.estim_lr.dtype)
        m, v, s = (lv.flat(x, name) for x, name in zip(state[:3], ("exp_avg", "exp_avg_sq", "grad_sum")))
        sums = _engine.reduce("dadapt_sums", _engine.rows("dadapt_sums", lv.n, lv.dtype, eps=eps, sb2=sb2, dlr=dlr), [lv.g, s, v], kernels=kernels)
        named = _engine.sums_by_name("dadapt_sums", sums)
        numerator = sb2 * state.numerator_weighted + (1 - sb2) * dlr * jnp.sum(named.g_s).astype(dlr.dtype)
        d_new = jnp.maximum(state.estim_lr, numerator / ((1 - sb2) * jnp.sum(named.s_abs).astype(dlr.dtype)))
        # d_new is an unused column: it orders the update after the reduction (cpp/functors/dadapt.h)
        coeffs = _engine.rows("dadapt", lv.n, lv.dtype, b1=beta1, b2=beta2, sb2=sb2, dlr=dlr, eps=eps, wd=weight_decay, d_new=d_new)
        out, m, v, s = _engine.update("dadapt", coeffs, [lv.g, lv.p, m, v, s], kernels=kernels, delta=delta, after=sums)
        t = lv.tree
        return t(out), DAdaptAdamWState(t(m), t(v), t(s), d_new, numerator, count_inc)

    return transformation(init_fn, apply)


