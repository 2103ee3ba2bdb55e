"""Learning-rate-free optimizers (``optax.contrib``'s) on the elementwise engine: DoG, DoWG,
Prodigy, D-Adapt AdamW, COCOB, Mechanic, MoMo and MoMo-Adam.

Each step is at most one reduce call (the global sums the step size needs, per tensor, summed in
JAX) and one update call writing every state stream and the parameters, for the whole pytree.
Scalar state (distances, sums of squared norms, D estimates) is kept in f32 (f64 with f64 params):
optax keeps it in the params' lowest dtype, which for bf16 params rounds these sums to 8 bits; for
f32 params the two agree.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from fromax import _family
from fromax._common import FOLDS_ALL, Leaves, base_update, decay_vector, kernels_for, power, scalar_dtype, transformation, value_at
from fromax._eager import eager_jit
from fromax.adam import MaskOrFn
from fromax._validate import check_beta, check_nonnegative, leaves_with_paths

Array = jax.Array


def _total(sums: Array, k: int) -> Array:
    """Global sum of column k of per-tensor sums (0 for an empty tree)."""
    return jnp.sum(sums[:, k])


# ---- DoG / DoWG ---------------------------------------------------------------------------------
class DoGState(NamedTuple):
    """State of :func:`dog` (``optax.contrib.DoGState``'s fields, plus the step count for a
    learning-rate schedule)."""

    is_init_step: Array
    init_params: Any
    max_dist: Array
    sum_sq_norm_grads: Array
    count: Array


@eager_jit
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
    if kind not in ("distance", "learning_rate", "heuristic"):
        raise ValueError(f"fromax.dog: init_step must be ('distance' | 'learning_rate' | 'heuristic', value), got {init_step!r}")
    check_nonnegative("fromax.dog", learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)

    def init_fn(params: Any) -> DoGState:
        dtype = scalar_dtype(params)
        if kind == "distance":
            r = jnp.asarray(value, dtype)
        elif kind == "heuristic":
            _, leaves, _ = leaves_with_paths(params, "parameter")
            sq = jnp.sum(_family.reduce("sum_sq", _family.rows(len(leaves), dtype), [leaves], kernels=kernels_for(backend, "sum_sq")))
            r = value * (1 + jnp.sqrt(sq)).astype(dtype)
        else:
            r = jnp.zeros([], dtype)
        params0 = jax.tree.map(jnp.copy, params)
        return DoGState(jnp.asarray(True), params0, r, jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DoGState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "dog")
        kernels = kernels_for(backend, "distance_norms", "scaled_sgd")
        wd = decay_vector(weight_decay, mask, params, lv.n, state.count)
        streams = [lv.g, lv.p, lv.flat(state.init_params, "init_params")]
        sums = _family.reduce("distance_norms", _family.rows(lv.n, lv.dtype, wd), streams, kernels=kernels)
        max_dist = jnp.maximum(state.max_dist, jnp.sqrt(_total(sums, 0)).astype(state.max_dist.dtype))
        sum_sq = state.sum_sq_norm_grads + _total(sums, 1).astype(state.sum_sq_norm_grads.dtype)
        eta = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            eta = jnp.where(state.is_init_step, value, eta)
        coeffs = _family.rows(lv.n, lv.dtype, wd, -value_at(learning_rate, state.count) * eta)
        (out,) = _family.update("scaled_sgd", coeffs, streams[:2], kernels=kernels, delta=delta)
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
    check_nonnegative("fromax.dowg", learning_rate=learning_rate, eps=eps, weight_decay=weight_decay, init_estim_sq_dist=init_estim_sq_dist)

    def init_fn(params: Any) -> DoWGState:
        dtype = scalar_dtype(params)
        r2 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(jax.tree.map(jnp.copy, params), jnp.zeros([], dtype), jnp.asarray(r2, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DoWGState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "dowg")
        kernels = kernels_for(backend, "distance_norms", "scaled_sgd")
        wd = decay_vector(weight_decay, mask, params, lv.n, state.count)
        streams = [lv.g, lv.p, lv.flat(state.init_params, "init_params")]
        sums = _family.reduce("distance_norms", _family.rows(lv.n, lv.dtype, wd), streams, kernels=kernels)
        r2 = jnp.maximum(state.estim_sq_dist, _total(sums, 0).astype(state.estim_sq_dist.dtype))
        weighted = r2 * _total(sums, 1).astype(r2.dtype) + state.weighted_sq_norm_grads
        eta = r2 / (jnp.sqrt(weighted) + eps)
        coeffs = _family.rows(lv.n, lv.dtype, wd, -value_at(learning_rate, state.count) * eta)
        (out,) = _family.update("scaled_sgd", coeffs, streams[:2], kernels=kernels, delta=delta)
        return lv.tree(out), DoWGState(state.init_params, weighted, r2, optax.safe_increment(state.count))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


# ---- Prodigy / D-Adapt AdamW ----------------------------------------------------------------------
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
    check_beta("fromax.prodigy", beta1=beta1, beta2=beta2, beta3=beta3)
    check_nonnegative("fromax.prodigy", learning_rate=learning_rate, eps=eps, estim_lr0=estim_lr0, estim_lr_coef=estim_lr_coef, weight_decay=weight_decay)

    def init_fn(params: Any) -> ProdigyState:
        dtype = scalar_dtype(params)
        zeros = optax.tree.zeros_like
        return ProdigyState(zeros(params), zeros(params), zeros(params), jax.tree.map(jnp.copy, params),
                            jnp.asarray(estim_lr0, dtype), jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: ProdigyState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "prodigy")
        kernels = kernels_for(backend, "prodigy_sums", "prodigy")
        count_inc = optax.safe_increment(state.count)
        d = state.estim_lr
        bc = (1 - power(beta2, count_inc)) ** 0.5 / (1 - power(beta1, count_inc))
        dlr = (d * value_at(learning_rate, state.count) * bc).astype(d.dtype)
        k = d if safeguard_warmup else dlr
        m, v, s, p0 = (lv.flat(x, name) for x, name in zip(state[:4], ("exp_avg", "exp_avg_sq", "grad_sum", "params0")))
        sums = _family.reduce("prodigy_sums", _family.rows(lv.n, lv.dtype, beta3, d, k, estim_lr0), [lv.g, lv.p, s, p0], kernels=kernels)
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * _total(sums, 0).astype(d.dtype)
        d_new = jnp.maximum(d, estim_lr_coef * numerator / _total(sums, 1).astype(d.dtype))
        coeffs = _family.rows(lv.n, lv.dtype, beta1, beta2, beta3, d, k, estim_lr0, dlr, weight_decay, d_new * eps)
        out, m, v, s = _family.update("prodigy", coeffs, [lv.g, lv.p, m, v, s], kernels=kernels, delta=delta, after=sums)
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
    check_beta("fromax.dadapt_adamw", beta1=beta1, beta2=beta2)
    check_nonnegative("fromax.dadapt_adamw", learning_rate=learning_rate, eps=eps, estim_lr0=estim_lr0, weight_decay=weight_decay)

    def init_fn(params: Any) -> DAdaptAdamWState:
        dtype = scalar_dtype(params)
        zeros = optax.tree.zeros_like
        return DAdaptAdamWState(zeros(params), zeros(params), zeros(params), jnp.asarray(estim_lr0, dtype), jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: DAdaptAdamWState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "dadapt_adamw")
        kernels = kernels_for(backend, "dadapt_sums", "dadapt")
        sb2 = beta2**0.5
        count_inc = optax.safe_increment(state.count)
        bc = (1 - power(beta2, count_inc)) ** 0.5 / (1 - power(beta1, count_inc))
        dlr = (state.estim_lr * value_at(learning_rate, state.count) * bc).astype(state.estim_lr.dtype)
        m, v, s = (lv.flat(x, name) for x, name in zip(state[:3], ("exp_avg", "exp_avg_sq", "grad_sum")))
        sums = _family.reduce("dadapt_sums", _family.rows(lv.n, lv.dtype, eps, sb2, dlr), [lv.g, s, v], kernels=kernels)
        numerator = sb2 * state.numerator_weighted + (1 - sb2) * dlr * _total(sums, 0).astype(dlr.dtype)
        d_new = jnp.maximum(state.estim_lr, numerator / ((1 - sb2) * _total(sums, 1).astype(dlr.dtype)))
        # d_new is an unused column: it orders the update after the reduction (cpp/functors/dadapt.h)
        coeffs = _family.rows(lv.n, lv.dtype, beta1, beta2, sb2, dlr, eps, weight_decay, d_new)
        out, m, v, s = _family.update("dadapt", coeffs, [lv.g, lv.p, m, v, s], kernels=kernels, delta=delta, after=sums)
        t = lv.tree
        return t(out), DAdaptAdamWState(t(m), t(v), t(s), d_new, numerator, count_inc)

    return transformation(init_fn, apply)


# ---- COCOB ----------------------------------------------------------------------------------------
class COCOBState(NamedTuple):
    """State of :func:`cocob` (``optax.contrib.COCOBState``'s fields, plus the step count)."""

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any
    count: Array


@eager_jit
def cocob(
    learning_rate: optax.ScalarOrSchedule = 1.0,
    alpha: float = 100.0,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    mask: MaskOrFn = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""COCOB-Backprop (Orabona & Tommasi, 2017), ``optax.contrib.cocob``: coin betting per coordinate.

    With :math:`c = \gamma_t (g + \lambda x)` (the "learning rate" only rescales the gradient):

    .. math::
        L \leftarrow \max(L, |c|),\ G \leftarrow G + |c|,\ R \leftarrow \max(R - c(x - x_0), 0),\
        C \leftarrow C - c,\qquad
        x_{new} = x_0 + \frac{C}{L \max(G + L, \alpha L)} (L + R)

    :math:`L` starts at ``eps``. No reduction: one pass reads 7 streams and writes 5.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.cocob()
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    check_nonnegative("fromax.cocob", learning_rate=learning_rate, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def init_fn(params: Any) -> COCOBState:
        zeros = optax.tree.zeros_like(params)
        return COCOBState(jax.tree.map(jnp.copy, params), zeros, optax.tree.full_like(params, eps), optax.tree.zeros_like(params),
                          optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: COCOBState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "cocob")
        wd = decay_vector(weight_decay, mask, params, lv.n, state.count)
        coeffs = _family.rows(lv.n, lv.dtype, value_at(learning_rate, state.count), wd, alpha)
        names = ("init_particles", "cumulative_gradients", "scale", "subgradients", "reward")
        p0, c, big_l, big_g, r = (lv.flat(x, name) for x, name in zip(state[:5], names))
        out, c, big_l, big_g, r = _family.update("cocob", coeffs, [lv.g, lv.p, p0, c, big_l, big_g, r], kernels=kernels_for(backend, "cocob"), delta=delta)
        t = lv.tree
        return t(out), COCOBState(state.init_particles, t(c), t(big_l), t(big_g), t(r), optax.safe_increment(state.count))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


# ---- Mechanic -------------------------------------------------------------------------------------
class MechanicState(NamedTuple):
    """State of :func:`mechanize` (``optax.contrib.MechanicState``'s)."""

    base_optimizer_state: Any
    count: Array
    r: Array
    m: Array
    v: Array
    s: Array
    x0: Any


@eager_jit
def mechanize(
    base_optimizer: optax.GradientTransformation,
    weight_decay: float = 0.01,
    eps: float = 1e-8,
    s_init: float = 1e-6,
    num_betas: int = 6,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Mechanic (Cutkosky, Defazio & Mehta, 2023), ``optax.contrib.mechanize``: learns a global
    scale :math:`\sum_i s_i` for any base optimizer's updates :math:`u`.

    With :math:`\Delta = (x_0 - x)/(\sum s + \epsilon)` and norms over the whole pytree,

    .. math::
        h = \langle g + \lambda \tfrac{\sum s\,\|g\|}{\|x\| + \epsilon} x,\ \Delta\rangle,\quad
        \text{per } \beta_i \in \{1 - 10^{-1}, \dots, 1 - 10^{-n}\}:\
        m_i, v_i, r_i, s_i \text{ as in optax},\qquad
        x_{new} = x_0 - \textstyle\sum s_{new}\,(\Delta - u)

    One pass computes :math:`\|g\|^2, \|x\|^2, \langle g, x_0 - x\rangle, \langle x, x_0 - x\rangle`,
    one writes :math:`x`. :func:`fromax.step` computes the base's update and the new :math:`x` in
    XLA, as ``tx.update`` does, its loops writing :math:`x` and the base's state in place: XLA then
    computes :math:`u` inside the loop writing :math:`x`, where a base kernel would write it to a
    fresh buffer on every step (measured on resnet50's shapes: 124.7 ms through the kernels, 77.8 ms
    in XLA).

    Deliberate difference: :math:`x_0` is the params given to ``init`` (optax re-takes the params of
    the first ``update``; the two agree when ``init`` sees the training's initial params).

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.mechanize(fromax.adamw(1e-3))
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    if not isinstance(num_betas, int) or num_betas < 1:
        raise ValueError(f"fromax.mechanize: num_betas must be a positive int, got {num_betas!r}")
    check_nonnegative("fromax.mechanize", weight_decay=weight_decay, eps=eps, s_init=s_init)
    base = optax.with_extra_args_support(base_optimizer)

    def init_fn(params: Any) -> MechanicState:
        dtype = scalar_dtype(params)
        # Separate buffers for r, m and v: one array in three fields cannot be donated to a step.
        zeros = lambda: jnp.zeros([num_betas], dtype)  # noqa: E731
        return MechanicState(base.init(params), jnp.zeros([], jnp.int32), zeros(), zeros(), zeros(),
                             jnp.full([num_betas], s_init, dtype), jax.tree.map(jnp.copy, params))

    def apply(grads: Any, state: MechanicState, params: Any, delta: bool, **extra: Any):
        lv = Leaves(grads, params, "mechanize")
        kernels = kernels_for(backend, "mechanic_sums", "mechanic")
        # In the fused step (delta False) the base and the update run in XLA (see the docstring).
        in_xla = not delta
        base_updates, base_state = base_update(base, True if in_xla else delta)(grads, state.base_optimizer_state, params, **extra)
        x0 = lv.flat(state.x0, "x0")
        sums = _family.reduce("mechanic_sums", _family.rows(lv.n, lv.dtype, 0.0), [lv.g, lv.p, x0], kernels=kernels)
        dtype = state.s.dtype
        gg, pp, gd, pd = (_total(sums, k).astype(dtype) for k in range(4))
        s_sum = jnp.sum(state.s)
        wd_scale = weight_decay * s_sum * jnp.sqrt(gg) / (jnp.sqrt(pp) + eps)
        h = (gd + wd_scale * pd) / (s_sum + eps)
        betas = jnp.asarray([1.0 - 0.1**i for i in range(1, num_betas + 1)], dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + jnp.clip(h, -state.m, state.m) * state.s
        s = (s_init / num_betas * m + jnp.maximum(0.0, r)) / (jnp.sqrt(v) + eps)
        coeffs = _family.rows(lv.n, lv.dtype, s_sum + eps, jnp.sum(s))
        (out,) = _family.update("mechanic", coeffs, [lv.p, x0, lv.flat(base_updates, "base update")], kernels=kernels and not in_xla, delta=delta)
        new_state = MechanicState(base_state, optax.safe_increment(state.count), r, m, v, s, state.x0)
        return lv.tree(out), new_state

    return transformation(init_fn, apply)


# ---- MoMo / MoMo-Adam -----------------------------------------------------------------------------
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
    check_beta("fromax.momo", beta=beta)
    check_nonnegative("fromax.momo", learning_rate=learning_rate, weight_decay=weight_decay)

    def init_fn(params: Any) -> MomoState:
        dtype = scalar_dtype(params)
        z = lambda: jnp.zeros([], dtype)  # noqa: E731 - a buffer per field, so the state can be donated
        return MomoState(optax.tree.zeros_like(params), z(), z(), jnp.asarray(lower_bound, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: MomoState, params: Any, delta: bool, *, value: Any = None, **extra: Any):
        _require_value(value, "momo")
        lv = Leaves(grads, params, "momo")
        kernels = kernels_for(backend, "momo_sums", "momo")
        bt = jnp.where(state.count == 0, 0.0, beta).astype(state.barf.dtype)
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, state.barf.dtype)
        m = lv.flat(state.exp_avg, "exp_avg")
        sums = _family.reduce("momo_sums", _family.rows(lv.n, lv.dtype, bt), [lv.g, lv.p, m], kernels=kernels)
        gp, norm, iprod = (_total(sums, k).astype(barf.dtype) for k in range(3))
        gamma = bt * state.gamma + (1 - bt) * gp
        alpha = value_at(learning_rate, state.count)
        tau, cp, new_lb = _polyak_step(barf, gamma, iprod, norm, alpha, weight_decay, state.lb, lower_bound, adapt_lower_bound, 1.0)
        coeffs = _family.rows(lv.n, lv.dtype, bt, cp, tau)
        out, m = _family.update("momo", coeffs, [lv.g, lv.p, m], kernels=kernels, delta=delta, after=sums)
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
    check_beta("fromax.momo_adam", b1=b1, b2=b2)
    check_nonnegative("fromax.momo_adam", learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)

    def init_fn(params: Any) -> MomoAdamState:
        dtype = scalar_dtype(params)
        z = lambda: jnp.zeros([], dtype)  # noqa: E731 - a buffer per field, so the state can be donated
        zeros = optax.tree.zeros_like
        return MomoAdamState(zeros(params), zeros(params), z(), z(), jnp.asarray(lower_bound, dtype), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: MomoAdamState, params: Any, delta: bool, *, value: Any = None, **extra: Any):
        _require_value(value, "momo_adam")
        lv = Leaves(grads, params, "momo_adam")
        kernels = kernels_for(backend, "momo_adam_sums", "momo_adam")
        count_inc = optax.safe_increment(state.count)
        dtype = state.barf.dtype
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype)
        bc2 = jnp.asarray(1 - power(b2, count_inc), dtype)
        m, v = lv.flat(state.exp_avg, "exp_avg"), lv.flat(state.exp_avg_sq, "exp_avg_sq")
        sums = _family.reduce("momo_adam_sums", _family.rows(lv.n, lv.dtype, b1, b2, eps, bc2), [lv.g, lv.p, m, v], kernels=kernels)
        norm, gp, iprod = (_total(sums, k).astype(dtype) for k in range(3))
        gamma = b1 * state.gamma + (1 - b1) * gp
        alpha = value_at(learning_rate, state.count)
        bc1 = jnp.asarray(1 - power(b1, count_inc), dtype)
        tau, cp, new_lb = _polyak_step(barf, gamma, iprod, norm, alpha, weight_decay, state.lb, lower_bound, adapt_lower_bound, bc1)
        coeffs = _family.rows(lv.n, lv.dtype, b1, b2, eps, bc2, cp, tau)
        out, m, v = _family.update("momo_adam", coeffs, [lv.g, lv.p, m, v], kernels=kernels, delta=delta, after=sums)
        new_lb = state.lb if new_lb is None else new_lb.astype(dtype)
        return lv.tree(out), MomoAdamState(lv.tree(m), lv.tree(v), barf, gamma, new_lb, count_inc)

    return transformation(init_fn, apply, folds=FOLDS_ALL)
