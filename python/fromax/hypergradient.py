"""Hypergradient AdamW and Auto-Hypergradient AdamW (the math of ``shared/specs/hypergradient.md``).

Both adapt one global learning rate from the hypergradient :math:`\\langle g_t, d_{t-1}\\rangle`
(Baydin et al., 2018), where :math:`d_{t-1}` is the previous Adam direction. It is a function of the
state before the step, so each step is one read-only reduce pass over ``g, m, v`` (no stored copy
of the previous direction) and one fused AdamW pass with the new learning rate.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fromax import _engine
from fromax._optimizer_base import Leaves, adam_columns, kernels_for, power, scalar_dtype, transformation
from fromax._eager import eager_jit
from fromax._validate import BETA, COUNT, FLAG, NONNEGATIVE, POSITIVE, checked

Array = jax.Array


def _previous_direction_columns(b1, b2, eps, count, dtype):
    """``bc1``, ``bc2``, ``eps`` of the step before this one (the hypergradient sums' columns); 1
    before the first step (no direction yet: the sums are then unused)."""
    first = count == 0
    return {"bc1": jnp.where(first, 1.0, 1 - power(b1, count)).astype(dtype), "bc2": jnp.where(first, 1.0, 1 - power(b2, count)).astype(dtype), "eps": eps}


class HypergradientAdamWState(NamedTuple):
    """State of :func:`hypergradient_adamw`: count, Adam moments, and the current learning rate."""

    count: Array
    mu: Any
    nu: Any
    learning_rate: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, beta_hyper=NONNEGATIVE, lr_min=NONNEGATIVE, lr_max=NONNEGATIVE, log_scale=FLAG)
def hypergradient_adamw(
    learning_rate: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    beta_hyper: float = 1e-7,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    log_scale: bool = False,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW whose learning rate follows its hypergradient (Baydin et al., ICLR 2018).

    From the second step on, with :math:`d_{t-1} = \hat m_{t-1}/(\sqrt{\hat v_{t-1}} + \epsilon)` and
    the sum over every element of every tensor:

    .. math::
        h = \textstyle\sum g_t \cdot d_{t-1},\qquad
        \eta \leftarrow \mathrm{clip}(\eta + \beta_h h,\ \eta_{min}, \eta_{max})
        \quad(\texttt{log\_scale}: \log\eta \leftarrow \mathrm{clip}(\log\eta + \beta_h h, \log\eta_{min}, \log\eta_{max}))

    then the AdamW step (:func:`fromax.adamw`, with ``weight_decay`` applied as
    :math:`p \leftarrow p(1-\eta\lambda)`, the same thing) with the new :math:`\eta`. The current
    learning rate is ``state.learning_rate``.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.hypergradient_adamw(1e-3)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    >>> float(state.learning_rate)
    0.001
    """
    def init_fn(params: Any) -> HypergradientAdamWState:
        zeros = optax.tree.zeros_like
        return HypergradientAdamWState(jnp.zeros([], jnp.int32), zeros(params), zeros(params), jnp.asarray(learning_rate, scalar_dtype(params)))

    def apply(grads: Any, state: HypergradientAdamWState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "hypergradient_adamw")
        kernels = kernels_for(backend, "hypergradient_sums", "adamw")
        mu, nu = lv.flat(state.mu, "mu"), lv.flat(state.nu, "nu")
        prev = _previous_direction_columns(b1, b2, eps, state.count, lv.dtype)
        sums = _engine.reduce("hypergradient_sums", _engine.rows("hypergradient_sums", lv.n, lv.dtype, **prev), [lv.g, mu, nu], kernels=kernels)
        lr = state.learning_rate
        h = jnp.sum(_engine.sums_by_name("hypergradient_sums", sums).g_dprev).astype(lr.dtype)
        if log_scale:
            adapted = jnp.exp(jnp.clip(jnp.log(lr) + beta_hyper * h, jnp.log(lr_min), jnp.log(lr_max)))
        else:
            adapted = jnp.clip(lr + beta_hyper * h, lr_min, lr_max)
        lr = jnp.where(state.count >= 1, adapted, lr).astype(lr.dtype)
        count_inc = optax.safe_increment(state.count)
        coeffs = _engine.rows("adamw", lv.n, lv.dtype, **adam_columns(b1, b2, eps, 0.0, count_inc, False), lr=lr, wd=weight_decay)
        out, mu, nu = _engine.update("adamw", coeffs, [lv.g, lv.p, mu, nu], kernels=kernels, delta=delta, after=sums)
        return lv.tree(out), HypergradientAdamWState(count_inc, lv.tree(mu), lv.tree(nu), lr)

    return transformation(init_fn, apply)


class AutoHypergradientAdamWState(NamedTuple):
    r"""State of :func:`auto_hypergradient_adamw`.

    Attributes
    ----------
    count, mu, nu : step count and Adam moments.
    learning_rate, b1 : the current (adapted) learning rate and first-moment decay.
    lr_sq, b1_sq : running means of the squared normalised hypergradients (start at 1).
    prev_grad_sq : :math:`\sum \|g\|^2` of the previous step.
    grad_ema : per-parameter EMA of gradients (``track_surprise``; else None).
    grad_var : running :math:`\|g\|^2` scale of the surprise signal.
    surprise, surprise_avg, gain : instant surprise :math:`S`, its average :math:`\bar S`, and the
        inverted-U gain :math:`\bar S e^{-\bar S/\theta}` (0 until adaptation starts).
    surprise_steps : how many surprise updates have run (0: no EMA yet).
    """

    count: Array
    mu: Any
    nu: Any
    learning_rate: Array
    b1: Array
    lr_sq: Array
    b1_sq: Array
    prev_grad_sq: Array
    grad_ema: Any
    grad_var: Array
    surprise: Array
    surprise_avg: Array
    gain: Array
    surprise_steps: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, hyper_lr=NONNEGATIVE, hyper_lr_beta=NONNEGATIVE, lr_min=NONNEGATIVE, lr_max=NONNEGATIVE, adapt_momentum=FLAG, track_surprise=FLAG, surprise_gamma=BETA, surprise_alpha=BETA, trauma_threshold=POSITIVE, beta_min=BETA, beta_max=BETA, warmup_steps=COUNT)
def auto_hypergradient_adamw(
    learning_rate: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    hyper_lr: float = 0.01,
    hyper_lr_beta: float = 1.0,
    lr_min: float = 1e-6,
    lr_max: float = 1.0,
    adapt_momentum: bool = False,
    track_surprise: bool = False,
    surprise_gamma: float = 0.9,
    surprise_alpha: float = 0.1,
    trauma_threshold: float = 0.5,
    beta_min: float = 0.5,
    beta_max: float = 0.9995,
    warmup_steps: int = 10,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW with a normalised, rate-limited hypergradient learning rate, optional momentum
    adaptation and an optional "surprise" signal.

    Let :math:`k` be the completed steps and :math:`N = \sum\|g_{k-1}\|^2`. Once
    :math:`k \ge` ``warmup_steps`` and :math:`N > 10^{-12}`:

    .. math::
        h = \mathrm{clip}(-\textstyle\sum g_k\cdot d_{k-1} / N, -1, 1),\quad
        G \leftarrow 0.99G + 0.01h^2,\quad
        \eta \leftarrow \mathrm{clip}\big(\mathrm{clip}(\eta - \eta_h h/(\sqrt G + 10^{-12}),
        0.9\eta, 1.1\eta), \eta_{min}, \eta_{max}\big)

    ``adapt_momentum``: :math:`h_b = \mathrm{clip}(\sum g_k\cdot m_{k-1}/N, -1, 1)`,
    :math:`G_b \leftarrow 0.99G_b + 0.01h_b^2`,
    :math:`\beta_1 \leftarrow \mathrm{clip}(\beta_1 - \eta_{\beta} h_b/(\sqrt{G_b}+10^{-12}), \beta_{min}, \beta_{max})`.

    ``track_surprise`` (from :math:`k \ge` ``warmup_steps``): with :math:`n = \sum\|g_k\|^2`,
    :math:`\sigma \leftarrow n` the first time, then :math:`\gamma\sigma + (1-\gamma)n`;
    :math:`e = \sum\|g_k - \bar g\|^2` (:math:`n` before the gradient EMA :math:`\bar g` exists);
    :math:`S = \tanh(e/(\sigma + 10^{-12}))`, :math:`\bar S \leftarrow \alpha S + (1-\alpha)\bar S`,
    ``gain`` :math:`= \bar S e^{-\bar S/\theta}` (peak at :math:`\bar S = \theta` =
    ``trauma_threshold``), :math:`\bar g \leftarrow \gamma\bar g + (1-\gamma) g` (first time: g).

    Then the AdamW step with the new :math:`\eta` and :math:`\beta_1` (bias correction
    :math:`1-\beta_1^t` with the current :math:`\beta_1`). Every sum is global. One reduce pass
    (:math:`\sum g\cdot d, \sum g\cdot m, \sum\|g\|^2`, and :math:`\sum\|g-\bar g\|^2`) and one fused
    update pass (also writing :math:`\bar g`).

    The state exposes ``learning_rate``, ``b1``, ``surprise``, ``surprise_avg`` and ``gain``. The gain
    can drive a model's input gain, e.g. scale the inputs by ``1 + scale * gain``:

    Examples
    --------
    >>> import jax, jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((3,))}
    >>> tx = fromax.auto_hypergradient_adamw(1e-2, track_surprise=True, warmup_steps=1)
    >>> state = tx.init(params)
    >>> x = jnp.array([1.0, 2.0, 3.0])
    >>> def loss(p, gain):
    ...     return (jnp.dot(p["w"], x * (1 + 0.5 * gain)) - 1.0) ** 2
    >>> for _ in range(3):
    ...     grads = jax.grad(loss)(params, state.gain)
    ...     params, state = fromax.step(tx, grads, state, params)
    >>> bool(state.gain > 0)
    True
    """
    def init_fn(params: Any) -> AutoHypergradientAdamWState:
        dtype = scalar_dtype(params)
        zeros = optax.tree.zeros_like
        # A buffer per field (calls, not one shared array), so the state can be donated to a step.
        one, zero = (lambda: jnp.ones([], dtype)), (lambda: jnp.zeros([], dtype))
        ema = zeros(params) if track_surprise else None
        return AutoHypergradientAdamWState(jnp.zeros([], jnp.int32), zeros(params), zeros(params), jnp.asarray(learning_rate, dtype),
                                           jnp.asarray(b1, dtype), one(), one(), zero(), ema, zero(), zero(), zero(), zero(),
                                           jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: AutoHypergradientAdamWState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "auto_hypergradient_adamw")
        reduce_name, update_name = ("surprise_sums", "adamw_ema") if track_surprise else ("hypergradient_sums", "adamw")
        kernels = kernels_for(backend, reduce_name, update_name)
        k = state.count
        beta1 = state.b1
        mu, nu = lv.flat(state.mu, "mu"), lv.flat(state.nu, "nu")
        ema = lv.flat(state.grad_ema, "grad_ema") if track_surprise else []
        prev = _previous_direction_columns(beta1, b2, eps, k, lv.dtype)
        streams = [lv.g, mu, nu] + ([ema] if track_surprise else [])
        sums = _engine.reduce(reduce_name, _engine.rows(reduce_name, lv.n, lv.dtype, **prev), streams, kernels=kernels)
        dtype = state.learning_rate.dtype
        named = _engine.sums_by_name(reduce_name, sums)
        g_dot_d, g_dot_m, g_sq = (jnp.sum(x).astype(dtype) for x in (named.g_dprev, named.g_m, named.gg))
        warm = k >= warmup_steps
        active = warm & (state.prev_grad_sq > 1e-12)
        norm = jnp.where(active, state.prev_grad_sq, 1)

        lr = state.learning_rate
        h = jnp.clip(-g_dot_d / norm, -1, 1)
        lr_sq = 0.99 * state.lr_sq + 0.01 * h * h
        target = jnp.clip(lr - hyper_lr * h / (jnp.sqrt(lr_sq) + 1e-12), 0.9 * lr, 1.1 * lr)
        lr = jnp.where(active, jnp.clip(target, lr_min, lr_max), lr)
        lr_sq = jnp.where(active, lr_sq, state.lr_sq)

        b1_sq = state.b1_sq
        if adapt_momentum:
            hb = jnp.clip(g_dot_m / norm, -1, 1)
            b1_sq_new = 0.99 * state.b1_sq + 0.01 * hb * hb
            b1_new = jnp.clip(beta1 - hyper_lr_beta * hb / (jnp.sqrt(b1_sq_new) + 1e-12), beta_min, beta_max)
            beta1 = jnp.where(active, b1_new, beta1)
            b1_sq = jnp.where(active, b1_sq_new, state.b1_sq)

        grad_var, surprise, surprise_avg, gain, steps = state.grad_var, state.surprise, state.surprise_avg, state.gain, state.surprise_steps
        ema_cols = {}
        if track_surprise:
            first = steps == 0
            var_new = jnp.where(first, g_sq, surprise_gamma * grad_var + (1 - surprise_gamma) * g_sq)
            error = jnp.where(first, g_sq, jnp.sum(named.rr).astype(dtype))
            s_now = jnp.tanh(error / (var_new + 1e-12))
            avg_new = surprise_alpha * s_now + (1 - surprise_alpha) * surprise_avg
            grad_var = jnp.where(warm, var_new, grad_var)
            surprise = jnp.where(warm, s_now, surprise)
            surprise_avg = jnp.where(warm, avg_new, surprise_avg)
            gain = jnp.where(warm, surprise_avg * jnp.exp(-surprise_avg / trauma_threshold), gain)
            # e' = ca e + cb g: unchanged before warm-up, g the first time, the EMA after.
            ca = jnp.where(warm & ~first, surprise_gamma, jnp.where(warm, 0.0, 1.0))
            cb = jnp.where(warm & ~first, 1 - surprise_gamma, jnp.where(warm, 1.0, 0.0))
            ema_cols = {"e_decay": ca, "e_gain": cb}
            steps = jnp.where(warm, optax.safe_increment(steps), steps)

        count_inc = optax.safe_increment(k)
        coeffs = _engine.rows(update_name, lv.n, lv.dtype, **adam_columns(beta1, b2, eps, 0.0, count_inc, False), lr=lr, wd=weight_decay, **ema_cols)
        out, mu, nu, *new_ema = _engine.update(update_name, coeffs, [lv.g, lv.p, mu, nu] + ([ema] if track_surprise else []), kernels=kernels, delta=delta, after=sums)
        t = lv.tree
        new_state = AutoHypergradientAdamWState(
            count_inc, t(mu), t(nu), lr.astype(dtype), beta1.astype(dtype), lr_sq.astype(dtype), b1_sq.astype(dtype), g_sq,
            t(new_ema[0]) if track_surprise else None, grad_var.astype(dtype), surprise.astype(dtype), surprise_avg.astype(dtype),
            gain.astype(dtype), steps,
        )
        return t(out), new_state

    return transformation(init_fn, apply)
