"""AdamW and LAMB on the elementwise engine (the Adam functor of ``cpp/functors/adam.h``)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fromax import _engine
from fromax._optimizer_base import FOLDS_ALL, Leaves, adam_columns, kernels_for, transformation, value_at
from fromax._eager import eager_jit
from fromax._stacked import stackable
from fromax._functors import trust_ratio
from fromax._validate import BETA, FLAG, FLOAT_DTYPE, MASK, NONNEGATIVE, checked, leaves_with_paths
from fromax.reference import acc_dtype

Array = jax.Array
MaskOrFn = Optional[Union[Any, Callable[[Any], Any]]]


class AdamWState(NamedTuple):
    """State of :func:`adamw` and :func:`lamb`: step count and the two moments (like
    ``optax.ScaleByAdamState``)."""

    count: Array
    mu: Any
    nu: Any


def _adam_init(who: str, mu_dtype):
    def init_fn(params: Any) -> AdamWState:
        if mu_dtype is not None:  # mu may be narrower or as wide, not wider than a leaf's accumulator
            mu_acc = acc_dtype(jax.dtypes.canonicalize_dtype(mu_dtype))
            for path, leaf in zip(*leaves_with_paths(params, "parameter")[:2]):
                if mu_acc.itemsize > acc_dtype(leaf.dtype).itemsize:
                    raise ValueError(
                        f"fromax.{who}: mu_dtype {np.dtype(mu_dtype).name} is wider than the {acc_dtype(leaf.dtype).name} the "
                        f"kernels compute parameter leaf {path} ({leaf.dtype}) in; use a mu_dtype of float32 or narrower "
                        "(bfloat16, float16), or float64 parameters"
                    )
        mu = optax.tree.zeros_like(params, dtype=mu_dtype)
        return AdamWState(jnp.zeros([], jnp.int32), mu, optax.tree.zeros_like(params))

    return init_fn


def _adam_apply(who: str, learning_rate, b1, b2, eps, eps_root, weight_decay, mask, nesterov: bool, trust: bool, backend: str):
    """The AdamW step (one fused update); with ``trust`` (LAMB) first a pass for the per-tensor
    norms, and the learning rate of each tensor scaled by its trust ratio."""

    def apply(grads: Any, state: AdamWState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, who)
        kernels = kernels_for(backend, *(("lamb_norms", "lamb") if trust else ()), "adamw")
        count_inc = optax.safe_increment(state.count)
        lr = value_at(learning_rate, state.count)
        wd = lv.decay(weight_decay, mask, params, state.count)
        adam = adam_columns(b1, b2, eps, eps_root, count_inc, nesterov)
        mu, nu = lv.flat(state.mu, "mu"), lv.flat(state.nu, "nu")
        streams = [lv.g, lv.p, mu, nu]
        if trust and _engine.fuses(kernels, delta):  # one call: norms, trust ratio and update per tensor
            _, (out, mu, nu) = _engine.fused("lamb", _engine.rows("lamb", lv.n, lv.dtype, **adam, wd=wd, lr=lr), streams, kernels=kernels)
            return lv.tree(out), AdamWState(count_inc, lv.tree(mu), lv.tree(nu))
        if trust:
            sums = _engine.reduce("lamb_norms", _engine.rows("lamb_norms", lv.n, lv.dtype, **adam, wd=wd), streams, kernels=kernels)
            named = _engine.sums_by_name("lamb_norms", sums)
            lr = lr * trust_ratio(named.p_norm, named.u_norm, 1.0, 0.0)
        out, mu, nu = _engine.update("adamw", _engine.rows("adamw", lv.n, lv.dtype, **adam, lr=lr, wd=wd), streams, kernels=kernels, delta=delta, after=sums if trust else None)
        return lv.tree(out), AdamWState(count_inc, lv.tree(mu), lv.tree(nu))

    return apply


@eager_jit
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, eps_root=NONNEGATIVE, mu_dtype=FLOAT_DTYPE, weight_decay=NONNEGATIVE, mask=MASK, nesterov=FLAG)
def adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Optional[Any] = None,
    weight_decay: optax.ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = False,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW (Loshchilov & Hutter, 2019): ``optax.adamw`` on one fused multi-tensor kernel.

    Per element, at step :math:`t` (counting from 1):

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \hat m_t = m_t / (1-\beta_1^t), \quad \hat v_t = v_t / (1-\beta_2^t),\\
        \Delta p = -\eta_t \left( \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) + \lambda p \right)

    (``nesterov``: :math:`\hat m_t = \beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)`).
    :math:`\lambda` (``weight_decay``) applies where ``mask`` is True. Same signature, defaults and
    numerics as ``optax.adamw``; the whole step (moments, direction, decay, parameter write) is one
    pass over ``g, p, m, v`` for the whole pytree, in place under :func:`fromax.step` with donation.

    Parameters
    ----------
    learning_rate, weight_decay : float or optax schedule (traced: changing them never recompiles).
    b1, b2, eps, eps_root, mu_dtype, mask, nesterov : as ``optax.adamw``.
    backend : {"auto", "ffi", "xla"}
        The compiled kernels ("auto" where registered, "ffi" required) or the pure-JAX reference.

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.adamw(1e-3)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    return transformation(_adam_init("adamw", mu_dtype), _adam_apply("adamw", learning_rate, b1, b2, eps, eps_root, weight_decay, mask, nesterov, False, backend), folds=FOLDS_ALL)


@eager_jit
@stackable
@checked(learning_rate=NONNEGATIVE, b1=BETA, b2=BETA, eps=NONNEGATIVE, eps_root=NONNEGATIVE, weight_decay=NONNEGATIVE, mask=MASK)
def lamb(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""LAMB (You et al., 2020): Adam directions rescaled per layer by a trust ratio, ``optax.lamb``.

    For each leaf, with :math:`u = \hat m/(\sqrt{\hat v + \epsilon_{root}} + \epsilon) + \lambda p` the
    AdamW direction (see :func:`adamw`):

    .. math::
        r = \|p\| / \|u\| \ (1 \text{ if either norm is } 0), \qquad \Delta p = -\eta_t\, r\, u

    The fused step (:func:`fromax.step`) is one call for the whole pytree: per tensor, a pass
    computing :math:`\|p\|^2, \|u\|^2`, the trust ratio, and a pass writing :math:`m, v` and
    :math:`p` (a small tensor both while it is in cache). The optax contract runs the norms on the
    kernel and the update in XLA. Same signature, defaults and numerics as ``optax.lamb``.

    ``stacked_axes`` (keyword-only: None, an int, a tuple of ints, a pytree prefix of the params or a
    callable ``(path, leaf) -> axes``): the stacked (scanned-layer) axes of each leaf; the per-tensor
    quantities are then per slice, so a (24, d, d) leaf stacked on axis 0 is updated as 24 (d, d)
    leaves would be (README, "Stacked layers").

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> params = {"w": jnp.ones((2, 3))}
    >>> tx = fromax.lamb(1e-2)
    >>> state = tx.init(params)
    >>> params, state = fromax.step(tx, {"w": jnp.full((2, 3), 0.5)}, state, params)
    """
    return transformation(_adam_init("lamb", None), _adam_apply("lamb", learning_rate, b1, b2, eps, eps_root, weight_decay, mask, False, True, backend), folds=FOLDS_ALL)
