"""Eager (un-jitted) steps: one compiled program per optimizer configuration, reused on every call.

Called outside ``jax.jit``, a step would run its JAX operations one by one: a dispatch each, and a
fresh compilation each time one of them sees a new Python constant (``b1 ** t`` with a concrete
step count ``t`` lowers to ``integer_pow`` with ``t`` baked in: one compilation per step). Instead,
an eager call of a fromax optimizer's ``update`` (or of :func:`fromax.step` on it) runs the whole
step as one jitted function, cached by the optimizer's *configuration*: its factory and the factory
arguments that are not arrays. Arrays among the arguments (the hyperparameters that
``optax.inject_hyperparams`` passes, rebuilding the optimizer on every step) are arguments of that
function, so a new value never recompiles. Inside ``jax.jit`` (any tracer among the inputs) the
step is traced as usual.

A cached program runs the Python of its first trace only. So a configuration is cached only if its
functions are known to depend on their arguments alone: optax's schedules, masks (functions of the
parameters' structure), and fromax optimizers built from such configurations. A function of the user's (``learning_rate=lambda count: lr[0]``,
or a scheduler's rate as ``fromax.optim`` passes it) may read Python state on each call, as it may
under optax when called eagerly; with one, the step runs operation by operation, as optax's does.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import jax
import numpy as np
import optax

from fromax import _fusion


class _Config:
    """A factory and its non-array arguments, as a jit static argument: equal when the factory is
    the same and every argument is equal (by value where hashable, else the same object)."""

    def __init__(self, factory: Callable, static: dict[str, Any]):
        self.factory, self.static = factory, static
        self._key = (factory, tuple((k, _by_value_or_identity(v)) for k, v in static.items()))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Config) and self._key == other._key


def _by_value_or_identity(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a mask pytree, say: the same object is the same argument
        return ("id", id(value))
    return ("value", type(value), value)


def _pure(value: Any) -> bool:
    """Whether ``value`` may be frozen into a cached program: anything but a function, or a function
    of optax's (its schedules) or a fromax optimizer whose own configuration is cached."""
    if isinstance(value, optax.GradientTransformation):
        return getattr(value.update, "fromax_eager_cached", False)
    if isinstance(value, (list, tuple)):
        return all(map(_pure, value))
    if isinstance(value, dict):
        return all(map(_pure, value.values()))
    if callable(value):
        return (getattr(value, "__module__", None) or "").split(".")[0] == "optax"
    return True


def _is_array(value: Any) -> bool:
    return isinstance(value, (jax.Array, np.ndarray, np.generic))


def traced(*trees: Any) -> bool:
    """Whether any leaf of ``trees`` is a tracer (the call is being traced, e.g. under jax.jit)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


@functools.partial(jax.jit, static_argnames=("config", "fused"))
def _step(arrays: dict, updates: Any, state: Any, params: Any, extra: dict, *, config: _Config, fused: bool):
    update = config.factory(**config.static, **arrays).update
    return (update.fromax_fused_step if fused else update)(updates, state, params, **extra)


def eager_jit(factory: Callable) -> Callable:
    """Decorate an optimizer factory (whose transformations come from ``fromax._optimizer_base.transformation``)
    so that eager calls of ``update`` and of the fused step run one cached compiled program."""
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args: Any, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        tx = factory(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        arrays = {k: v for k, v in bound.arguments.items() if _is_array(v)}
        static = {k: v for k, v in bound.arguments.items() if k not in arrays}
        # A mask function maps the parameters' structure to booleans, a stacked_axes function a leaf's
        # path and shape to axes: taken as pure.
        if not all(_pure(v) for k, v in static.items() if "mask" not in k and k != "stacked_axes"):
            return _with_eager_calls(tx, None, arrays)
        return _with_eager_calls(tx, _Config(factory, static), arrays)

    make.fromax_factory = True  # type: ignore[attr-defined]  # see fromax._fusion.step_plan
    return make


def _with_eager_calls(tx: optax.GradientTransformationExtraArgs, config: _Config | None, arrays: dict) -> optax.GradientTransformationExtraArgs:
    """``tx`` whose eager calls run the cached program of ``config`` (None: run as traced)."""
    traced_update, traced_fused = tx.update, tx.update.fromax_fused_step

    def dispatch(direct: Callable, fused: bool) -> Callable:
        def call(updates: Any, state: Any, params: Any = None, **extra: Any):
            marked = None if fused else _fusion.claim(params)
            if marked is not None:  # fromax.step through a wrapper: the fused step's new params
                new_params, new_state = traced_fused(updates, state, params, **extra)
                marked.result = new_params
                return new_params, new_state
            if config is None or traced(arrays, updates, state, params, extra) or not all(map(_is_array_like, jax.tree.leaves(extra))):
                return direct(updates, state, params, **extra)
            return _step(arrays, updates, state, params, extra, config=config, fused=fused)

        return call

    update = dispatch(traced_update, False)
    update.fromax_fused_step = dispatch(traced_fused, True)  # type: ignore[attr-defined]
    update.fromax_eager_cached = config is not None  # type: ignore[attr-defined]
    # Carried over: the base update of a wrapper's fused step (only ever traced) and what the
    # optimizer folds of a chain (fromax._fusion).
    for attr in ("fromax_update_state_in_place", "fromax_folds"):
        if hasattr(traced_update, attr):
            setattr(update, attr, getattr(traced_update, attr))
    return optax.GradientTransformationExtraArgs(tx.init, update)


def _is_array_like(x: Any) -> bool:
    return _is_array(x) or isinstance(x, (bool, int, float, complex))
