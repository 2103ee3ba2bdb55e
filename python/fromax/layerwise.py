"""LARS and NovoGrad: per-layer scalars (trust ratio, gradient norm) applied in one fused pass."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fromax import _engine, _prologue
from fromax._optimizer_base import FOLDS_ALL, Leaves, kernels_for, transformation, value_at
from fromax._eager import eager_jit
from fromax._stacked import stackable
from fromax._validate import BETA, FLAG, MASK, NONNEGATIVE, checked
from fromax._functors import novograd_moment, trust_ratio
from fromax.adam import MaskOrFn

Array = jax.Array


class LarsState(NamedTuple):
    """State of :func:`lars`: step count and the momentum trace (``optax.TraceState``'s)."""

    count: Array
    trace: Any


@eager_jit
@stackable
@checked(learning_rate=NONNEGATIVE, weight_decay=NONNEGATIVE, weight_decay_mask=MASK, trust_coefficient=NONNEGATIVE, eps=NONNEGATIVE, trust_ratio_mask=MASK, momentum=NONNEGATIVE, nesterov=FLAG)
def lars(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: float = 0.9,
    nesterov: bool = False,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""LARS (You et al., 2017): layer-wise trust ratios with momentum, ``optax.lars``.

    For each leaf, :math:`u = g + \lambda p` (where ``weight_decay_mask``),

    .. math::
        r = c\,\|p\| / (\|u\| + \epsilon) \ (1 \text{ if either norm is 0, or outside
        } \texttt{trust\_ratio\_mask}),\qquad
        t \leftarrow -\eta_t r u + \mu t,\qquad \Delta p = t \ (\text{Nesterov: } -\eta_t r u + \mu t)

    The fused step is one call for the whole pytree: per tensor, one pass for :math:`\|p\|^2,
    \|u\|^2`, the trust ratio, one pass writing :math:`t` and :math:`p` (a small tensor both
    while it is in cache). Same signature, defaults and numerics as ``optax.lars``.

    ``stacked_axes`` (keyword-only: None, an int, a tuple of ints, a pytree prefix of the params or a
    callable ``(path, leaf) -> axes``): the stacked (scanned-layer) axes of each leaf; the per-tensor
    quantities are then per slice, so a (24, d, d) leaf stacked on axis 0 is updated as 24 (d, d)
    leaves would be (README, "Stacked layers").

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.lars(0.1)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    def init_fn(params: Any) -> LarsState:
        return LarsState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def apply(grads: Any, state: LarsState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "lars")
        kernels = kernels_for(backend, "lars_norms", "momentum", "lars")
        lr = value_at(learning_rate, state.count)
        wd = lv.decay(weight_decay, weight_decay_mask, params, state.count, "weight_decay_mask")
        trust_mask = lv.mask(trust_ratio_mask, params, "trust_ratio_mask")
        if _engine.fuses(kernels, delta):  # one call: norms, trust ratio and update per tensor
            coeffs = _engine.rows("lars", lv.n, lv.dtype, wd=wd, lr=lr, trust_coefficient=trust_coefficient, eps=eps, trust_mask=trust_mask,
                                  momentum=momentum, nesterov=float(nesterov))
            _, (out, trace) = _engine.fused("lars", coeffs, [lv.g, lv.p, lv.flat(state.trace, "trace")], kernels=kernels)
            return lv.tree(out), LarsState(optax.safe_increment(state.count), lv.tree(trace))
        sums = _engine.reduce("lars_norms", _engine.rows("lars_norms", lv.n, lv.dtype, wd=wd), [lv.g, lv.p], kernels=kernels)
        named = _engine.sums_by_name("lars_norms", sums)
        ratio = trust_ratio(named.p_norm, named.u_norm, trust_coefficient, eps)
        ratio = jnp.where(trust_mask > 0, ratio, 1)
        coeffs = _engine.rows("momentum", lv.n, lv.dtype, wd=wd, scale=-lr * ratio, decay=momentum, nesterov=float(nesterov))
        out, trace = _engine.update("momentum", coeffs, [lv.g, lv.p, lv.flat(state.trace, "trace")], kernels=kernels, delta=delta)
        return lv.tree(out), LarsState(optax.safe_increment(state.count), lv.tree(trace))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


class NovogradState(NamedTuple):
    """State of :func:`novograd` (``optax.ScaleByNovogradState``'s): step count, the first moment
    per element and the second moment per leaf (0-d)."""

    count: Array
    mu: Any
    nu: Any


def _stack(nu: list, lv: Leaves) -> Array:
    """The per-tensor second moments as one ``(n,)`` vector in the accumulator dtype."""
    return jnp.stack([x.astype(lv.dtype) for x in nu]) if lv.n else jnp.zeros([0], lv.dtype)


@eager_jit
@stackable
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, eps_root=NONNEGATIVE, weight_decay=NONNEGATIVE)
def novograd(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""NovoGrad (Ginsburg et al., 2019): Adam-like with a per-layer second moment, ``optax.novograd``.

    For each leaf, :math:`\nu = \|g\|^2` on the first step, then
    :math:`\nu \leftarrow \beta_2 \nu + (1-\beta_2)\|g\|^2`;

    .. math::
        m \leftarrow \beta_1 m + \frac{g}{\sqrt{\nu + \epsilon_{root}} + \epsilon} + \lambda p
        \ (\text{first step: no } \beta_1 m), \qquad \Delta p = -\eta_t m

    The fused step is one call for the whole pytree: per tensor, :math:`\|g\|^2`, the moment
    and a pass writing :math:`m` and :math:`p` (a small tensor while it is in cache); the optax
    contract is one reduction and the update in XLA. Same signature, defaults and numerics as
    ``optax.novograd``.

    ``stacked_axes`` (keyword-only: None, an int, a tuple of ints, a pytree prefix of the params or a
    callable ``(path, leaf) -> axes``): the stacked (scanned-layer) axes of each leaf; the per-tensor
    quantities are then per slice, so a (24, d, d) leaf stacked on axis 0 is updated as 24 (d, d)
    leaves would be (README, "Stacked layers").

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.novograd(0.01)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    def init_fn(params: Any) -> NovogradState:
        nu = jax.tree.map(lambda p: jnp.asarray(0.0, dtype=p.dtype), params)
        return NovogradState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params), nu)

    def apply(grads: Any, state: NovogradState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "novograd")
        kernels = kernels_for(backend, "novograd", "novograd_step")
        count_inc = optax.safe_increment(state.count)
        first = count_inc == 1
        # |g| per tensor as one (n,) column of the reduce's table (a list of n scalars stacked
        # again would be 2n more ops for XLA to compile). A folded chain prologue reads the params
        # too: |g'|^2 of the gradient it makes.
        folding = _prologue.active() is not None
        nu_old = lv.flat(state.nu, "nu")
        lr = value_at(learning_rate, state.count)
        streams = [lv.g, lv.p, lv.flat(state.mu, "mu")]
        if _engine.fuses(kernels, delta):  # one call: |g|^2, the moment and the update per tensor
            nu_old_vec = _stack(nu_old, lv)
            coeffs = _engine.rows("novograd_step", lv.n, lv.dtype, nu=nu_old_vec, first=first.astype(lv.dtype), b1=b1, b2=b2, one_minus_b2=1 - b2, eps=eps,
                                  eps_root=eps_root, wd=weight_decay, lr=lr)
            sums, (out, mu) = _engine.fused("novograd_step", coeffs, streams, kernels=kernels)
            g_norm = _engine.sums_by_name("novograd_step", sums).x_norm
            nu = novograd_moment(nu_old_vec, first, b2, 1 - b2, g_norm * g_norm)
        else:
            name = "grad_norm" if folding else "norm"
            g_norm = _engine.reduce(name, _engine.rows(name, lv.n, lv.dtype), streams[:2] if folding else streams[:1], kernels=kernels)[:, 0]
            nu = novograd_moment(_stack(nu_old, lv), first, b2, 1 - b2, g_norm * g_norm)
            den = jnp.sqrt(nu + eps_root) + eps
            coeffs = _engine.rows("novograd", lv.n, lv.dtype, b1=jnp.where(first, 0.0, b1), den=den, wd=weight_decay, lr=lr)
            out, mu = _engine.update("novograd", coeffs, streams, kernels=kernels, delta=delta)
        nu_leaves = [nu[i].astype(x.dtype) for i, x in enumerate(nu_old)]
        return lv.tree(out), NovogradState(count_inc, lv.tree(mu), lv.tree(nu_leaves))

    return transformation(init_fn, apply, folds=FOLDS_ALL)
