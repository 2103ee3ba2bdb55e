"""Transformations the facade needs that optax does not have in the form braintools' classes define:
NAdam with scheduled momentum (PyTorch's ``NAdam``), Lookahead over a plain parameter pytree, and
Adafactor with PyTorch's ``eps``/``clip_threshold``/``beta1`` meaning."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax


class ScaleByNadamState(NamedTuple):
    count: jax.Array
    mu_product: jax.Array  # prod_{i <= t} mu_i
    mu: Any
    nu: Any


def scale_by_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3) -> optax.GradientTransformation:
    r"""NAdam with scheduled momentum (Dozat 2016; PyTorch's ``NAdam``), without the learning rate.

    .. math::
        \mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi}),\quad m_t = \beta_1 m + (1-\beta_1) g,\quad
        v_t = \beta_2 v + (1-\beta_2) g^2,\\
        u = \frac{1}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}\Big(\frac{\mu_{t+1} m_t}{1 - \prod_{i\le t+1}\mu_i}
            + \frac{(1-\mu_t) g}{1 - \prod_{i\le t}\mu_i}\Big)

    with :math:`\psi` = ``momentum_decay``.
    """

    def init(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        return ScaleByNadamState(jnp.zeros([], jnp.int32), jnp.ones([], jnp.float32), zeros(), zeros())

    def update(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        product = state.mu_product * mu_t
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        c2 = 1 - b2**t

        def direction(g, m, v):
            denom = jnp.sqrt(v / c2) + eps
            return ((mu_next / (1 - product * mu_next)) * m + ((1 - mu_t) / (1 - product)) * g) / denom

        return jax.tree.map(direction, updates, mu, nu), ScaleByNadamState(count, product, mu, nu)

    return optax.GradientTransformation(init, update)


class LookaheadState(NamedTuple):
    count: jax.Array
    slow: Any
    fast_state: Any


def lookahead(fast: optax.GradientTransformation, sync_period: int, alpha: float) -> optax.GradientTransformation:
    r"""Lookahead (Zhang et al. 2019) over a plain parameter pytree: the fast optimizer steps every
    time; every ``sync_period`` steps the slow weights move ``phi <- phi + alpha (theta - phi)`` and the
    parameters jump to them. The slow weights live in the state, so the parameters stay an ordinary
    pytree (``optax.lookahead`` needs ``LookaheadParams``)."""
    if int(sync_period) != sync_period or sync_period < 1:
        raise ValueError(f"Lookahead: sync_period must be a positive integer, got {sync_period}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"Lookahead: alpha must be in [0, 1], got {alpha}")
    fast = optax.with_extra_args_support(fast)

    def init(params):
        return LookaheadState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.asarray, params), fast.init(params))

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("Lookahead needs params in update()")
        step, fast_state = fast.update(updates, state.fast_state, params, **extra)
        theta = optax.apply_updates(params, step)
        count = optax.safe_increment(state.count)
        sync = count % sync_period == 0
        slow = jax.tree.map(lambda s, x: jnp.where(sync, s + alpha * (x - s), s).astype(s.dtype), state.slow, theta)
        new = jax.tree.map(lambda s, x: jnp.where(sync, s, x), slow, theta)
        out = jax.tree.map(lambda n, p: (n - p).astype(p.dtype), new, params)
        return out, LookaheadState(count, slow, fast_state)

    return optax.GradientTransformationExtraArgs(init, update)


def adafactor(lr: Any, eps: tuple, clip_threshold: Optional[float], decay_rate: float, beta1: Optional[float],
              weight_decay: float, factored: bool) -> optax.GradientTransformation:
    r"""Adafactor (Shazeer & Stern 2018) with PyTorch's arguments, from optax's pieces:
    factored second moments (:math:`\epsilon_1` = ``eps[0]`` added to :math:`g^2`, decay
    :math:`1 - t^{-c}` with :math:`c` = ``decay_rate``), the update clipped to RMS ``clip_threshold``,
    scaled by the learning rate and by :math:`\max(\epsilon_2, \mathrm{RMS}(W))` (``eps[1]``), an
    optional first moment (``beta1``) and decoupled weight decay."""
    parts = [optax.scale_by_factored_rms(factored=factored, decay_rate=decay_rate, epsilon=eps[0])]
    if clip_threshold is not None:
        parts.append(optax.clip_by_block_rms(clip_threshold))
    parts += [optax.scale_by_learning_rate(lr, flip_sign=False), optax.scale_by_param_block_rms(min_scale=eps[1])]
    if beta1 is not None:
        parts.append(optax.ema(beta1, debias=False))
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale(-1.0))
    return optax.chain(*parts)
