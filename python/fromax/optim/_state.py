"""The brainstate State that holds optimizer and scheduler state, and the dtypes it is kept in."""

from __future__ import annotations

import brainstate
import jax.numpy as jnp

# Every scalar the facade keeps in a State has one fixed dtype, whether it was written by Python
# code outside a jitted step or by the step itself: a State whose dtype or weak type changed would
# make `brainstate.transform.jit` trace and compile the step again.
LR_DTYPE = jnp.float32
COUNT_DTYPE = jnp.int32


class OptimState(brainstate.LongTermState):
    """A :class:`brainstate.LongTermState` holding optimizer state (moments, step counts, learning
    rates): threaded through ``brainstate.transform.jit`` like the parameters, never trained."""


def lr_array(values) -> jnp.ndarray:
    """Learning rates as the 1-D float32 array the facade keeps them in."""
    return jnp.asarray(values, LR_DTYPE).reshape(-1)


def count_array(value) -> jnp.ndarray:
    return jnp.asarray(value, COUNT_DTYPE)
