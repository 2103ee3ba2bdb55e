"""``fromax.step``: apply an optimizer step and return the new params, fused where fromax can."""

from __future__ import annotations

from typing import Any

import optax


def step(
    tx: optax.GradientTransformation, grads: Any, state: Any, params: Any, **extra_args: Any
) -> tuple[Any, Any]:
    r"""One optimizer step: ``(params, state) -> (new_params, new_state)``.

    For a fromax transformation (e.g. :func:`fromax.fromage`) this is the fused kernel that writes
    the new parameters directly (for Fromage, :math:`W_{new} = aW + bg` per tensor, two passes over
    memory, small tensors once) instead of materialising the update :math:`W_{new} - W` and adding
    it. Under ``jax.jit(..., donate_argnums=...)`` with the params donated, every parameter buffer is
    updated in place. Any other optax transformation falls back to
    ``tx.update`` + ``optax.apply_updates`` with the same result.

    Donation: JAX pairs donated inputs with same-shaped outputs in order, and this returns
    ``(params, state)``; donate params and state in that order (as below), or XLA copies state
    tensors (Adam's moments, say) before the in-place kernel.

    Examples
    --------
    >>> import functools, jax, jax.numpy as jnp, fromax
    >>> tx = fromax.fromage()
    >>> params = {"w": jnp.ones((4, 4))}
    >>> state = tx.init(params)
    >>> train_step = jax.jit(lambda g, p, s: fromax.step(tx, g, s, p), donate_argnums=(1, 2))
    >>> grads = {"w": jnp.full((4, 4), 0.1)}
    >>> params, state = train_step(grads, params, state)
    """
    fused = getattr(tx.update, "fromax_fused_step", None)
    if fused is not None:
        return fused(grads, state, params, **extra_args)
    updates, state = optax.with_extra_args_support(tx).update(grads, state, params, **extra_args)
    return optax.apply_updates(params, updates), state
