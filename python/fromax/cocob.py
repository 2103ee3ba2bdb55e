"""COCOB (``optax.contrib.cocob``): coin-betting, no learning rate (``cpp/functors/cocob.h``).

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
from fromax._optimizer_base import FOLDS_ALL, Leaves, kernels_for, transformation, value_at
from fromax._eager import eager_jit
from fromax.adam import MaskOrFn
from fromax._validate import MASK, NONNEGATIVE, checked

Array = jax.Array


class COCOBState(NamedTuple):
    """State of :func:`cocob` (``optax.contrib.COCOBState``'s fields, plus the step count)."""

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any
    count: Array


@eager_jit
@checked(learning_rate=NONNEGATIVE, alpha=NONNEGATIVE, eps=NONNEGATIVE, weight_decay=NONNEGATIVE, mask=MASK)
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
    def init_fn(params: Any) -> COCOBState:
        zeros = optax.tree.zeros_like(params)
        return COCOBState(jax.tree.map(jnp.copy, params), zeros, optax.tree.full_like(params, eps), optax.tree.zeros_like(params),
                          optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

    def apply(grads: Any, state: COCOBState, params: Any, delta: _engine.Output, **extra: Any):
        lv = Leaves(grads, params, "cocob")
        wd = lv.decay(weight_decay, mask, params, state.count)
        coeffs = _engine.rows("cocob", lv.n, lv.dtype, lr=value_at(learning_rate, state.count), wd=wd, alpha=alpha)
        names = ("init_particles", "cumulative_gradients", "scale", "subgradients", "reward")
        p0, c, big_l, big_g, r = (lv.flat(x, name) for x, name in zip(state[:5], names))
        out, c, big_l, big_g, r = _engine.update("cocob", coeffs, [lv.g, lv.p, p0, c, big_l, big_g, r], kernels=kernels_for(backend, "cocob"), delta=delta)
        t = lv.tree
        return t(out), COCOBState(state.init_particles, t(c), t(big_l), t(big_g), t(r), optax.safe_increment(state.count))

    return transformation(init_fn, apply, folds=FOLDS_ALL)


