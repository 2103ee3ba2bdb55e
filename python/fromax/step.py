"""``fromax.step``: apply an optimizer step and return the new params, fused where fromax can."""

from __future__ import annotations

from typing import Any

import optax

from fromax import _fusion
from fromax._eager import traced


def step(
    tx: optax.GradientTransformation, grads: Any, state: Any, params: Any, **extra_args: Any
) -> tuple[Any, Any]:
    r"""One optimizer step: ``(params, state) -> (new_params, new_state)``.

    For a fromax transformation (e.g. :func:`fromax.fromage`) this is the fused kernel that writes
    the new parameters directly (for Fromage, :math:`W_{new} = aW + bg` per tensor, two passes over
    memory, small tensors once) instead of materialising the update :math:`W_{new} - W` and adding
    it. Under ``jax.jit(..., donate_argnums=...)`` with the params donated, every parameter buffer is
    updated in place.

    Inside other transformations the optimizer's fused step still runs: ``optax.chain`` (nested too)
    ending in a fromax optimizer, its gradient pre-processing folded into the optimizer's kernels
    where they can (``clip_by_global_norm``, ``scale``, ``scale_by_schedule``,
    ``add_decayed_weights`` without a mask, ``clip``), and wrappers that pass its update through
    (``optax.inject_hyperparams``). Any other transformation (``apply_if_finite``, ``MultiSteps``, a
    chain with an element after the optimizer, optax's own optimizers) runs
    ``tx.update`` + ``optax.apply_updates``, with the same result; :func:`fromax.step_plan` says
    which, and the ``"fromax"`` logger says so at DEBUG level when a step falls back.

    Called outside ``jax.jit``, a fromax optimizer's step runs one program compiled per
    configuration and shapes, on the first call only (unless the configuration holds a function of
    your own, which may read Python state: then it runs op by op, as optax does); any other
    transformation runs ``tx.update`` + ``optax.apply_updates`` as optax does, its fromax optimizer
    through that cached program.

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
    if traced(grads, state, params, extra_args):
        return _fusion.run(tx, grads, state, params, extra_args)
    return _fusion.contract(tx, grads, state, params, extra_args)
