"""What every optimizer of the family shares: leaves, masks, schedules, and the optax wrapper that
also exposes the fused step to :func:`fromax.step`."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np
import optax

from fromax import _ffi
from fromax._engine import Output, coeff_dtype
from fromax._functors import FUNCTORS
from fromax._validate import leaves_with_paths, matching_leaves

Array = jax.Array


def kernels_for(backend: str, *functors: str) -> bool:
    """Whether to run the kernels of ``functors`` (see :func:`fromax._ffi.use_kernels`)."""
    return _ffi.use_kernels(backend, tuple(FUNCTORS[f].target for f in functors))


def value_at(x: Any, count: Array) -> Any:
    """A hyperparameter's value at step ``count``: schedules are called, constants returned."""
    return x(count) if callable(x) else x


def mask_vector(mask: Any, params: Any, n: int, what: str = "fromax: mask") -> np.ndarray | Array:
    """Per-leaf 0/1 weights of an optax mask (None or True: every leaf; a pytree of booleans, or a
    prefix of the params tree, or a callable returning one). float64, so that a value scaled by it
    keeps every bit until the rows cast it to the accumulator dtype (f64 for f64 leaves). ``what``
    names the argument in errors."""
    if mask is None or mask is True:
        return np.ones(n, np.float64)
    if mask is False:
        return np.zeros(n, np.float64)
    tree = mask(params) if callable(mask) else mask
    try:
        flags = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), tree, params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} does not match the params (it must be a pytree of booleans with the params' structure, or a prefix of it): {e}") from None
    values = jax.tree.leaves(flags)
    if len(values) != n:
        raise ValueError(f"{what} covers {len(values)} leaves but the params have {n}")
    return np.asarray([bool(v) for v in values], np.float64)


def decay_vector(weight_decay: Any, mask: Any, params: Any, n: int, count: Array, what: str = "fromax: mask"):
    """Per-leaf weight decay at step ``count``: the (scheduled) value where ``mask`` is True, 0
    elsewhere; ``weight_decay=None`` is no decay."""
    if weight_decay is None:
        return np.zeros(n, np.float64)
    return value_at(weight_decay, count) * mask_vector(mask, params, n, what)


class Leaves:
    """A step's flattened grads and params, checked against each other."""

    def __init__(self, grads: Any, params: Any, who: str):
        self.who = f"fromax.{who}"
        self.paths, self.g, self.p, self.treedef = matching_leaves(grads, params, self.who)
        self.n = len(self.p)
        self.dtype = coeff_dtype(self.p)

    def mask(self, mask: Any, params: Any, what: str) -> np.ndarray | Array:
        """:func:`mask_vector` of the argument named ``what``."""
        return mask_vector(mask, params, self.n, f"{self.who}: {what}")

    def decay(self, weight_decay: Any, mask: Any, params: Any, count: Array, what: str = "mask"):
        """:func:`decay_vector`, ``what`` naming the mask argument."""
        return decay_vector(weight_decay, mask, params, self.n, count, f"{self.who}: {what}")

    def flat(self, tree: Any, what: str) -> list[Array]:
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self.treedef:
            raise ValueError(f"fromax: the state's {what} does not match the parameter tree; was the state made by this transformation's init?")
        return leaves

    def tree(self, leaves: list[Array]) -> Any:
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def scalar_dtype(params: Any) -> np.dtype:
    """The dtype of a transformation's scalar state (f32, f64 if any leaf is f64): never bf16/f16."""
    _, leaves, _ = leaves_with_paths(params, "parameter")
    return coeff_dtype(leaves)


# Every kind of chain element (fromax._prologue) an optimizer whose gradient-reading functors all
# have a ``<name>_pre`` twin can fold.
FOLDS_ALL = frozenset({"scale", "add", "clamp", "global_clip"})


def transformation(init_fn: Callable, apply: Callable, folds: frozenset = frozenset()) -> optax.GradientTransformationExtraArgs:
    """An optax transformation from ``apply(grads, state, params, delta, **extra) -> (out, state)``:
    ``update`` returns the increments (``Output.INCREMENT``), :func:`fromax.step` the new params
    written over the old ones (``Output.NEW``). ``folds``: the kinds of chain elements its fused step can
    fold (fromax._prologue)."""

    def update_fn(updates: Any, state: Any, params: Any = None, **extra_args: Any):
        return apply(updates, state, params, Output.INCREMENT, **extra_args)

    def fused_step(grads: Any, state: Any, params: Any, **extra_args: Any):
        return apply(grads, state, params, Output.NEW, **extra_args)

    def update_state_in_place(updates: Any, state: Any, params: Any = None, **extra_args: Any):
        return apply(updates, state, params, Output.INCREMENT_STATE_IN_PLACE, **extra_args)

    def checked_init(params: Any) -> Any:
        leaves_with_paths(params, "parameter")  # unsupported leaves fail here, not at the first update
        return init_fn(params)

    update_fn.fromax_fused_step = fused_step  # type: ignore[attr-defined]  # found by fromax.step
    update_fn.fromax_update_state_in_place = update_state_in_place  # type: ignore[attr-defined]  # see base_update
    update_fn.fromax_folds = folds  # type: ignore[attr-defined]  # see fromax._fusion
    return optax.GradientTransformationExtraArgs(checked_init, update_fn)


def base_update(base: optax.GradientTransformation, delta: Output) -> Callable:
    """The update a wrapper (mechanize, schedule_free) calls on its base: inside the wrapper's fused
    step (``delta`` NEW or INCREMENT_STATE_IN_PLACE: the state is donated) a fromax base writes its state in
    place, as the fused step does; otherwise, or for any other base, ``base.update``."""
    if delta == Output.INCREMENT:  # the optax contract
        return base.update
    return getattr(base.update, "fromax_update_state_in_place", base.update)


@functools.partial(jax.jit, inline=True)
def power(base: Any, count: Any) -> Array:
    """``base ** count`` for a step count (bias corrections). Jitted, and inlined where it is traced:
    called eagerly with a concrete count, ``**`` would compile a new ``integer_pow`` for every count
    (optax jits its bias correction for the same reason)."""
    return base**count


def adam_columns(b1, b2, eps, eps_root, count_inc: Array, nesterov: bool) -> dict[str, Any]:
    """The columns every Adam row starts with (``functors.h``: adamw, lamb, ...): b1, b2, eps,
    eps_root, and the bias corrections as optax applies them at step ``count_inc`` (cm, cg: of the
    first moment, bc2: of the second)."""
    t = count_inc
    bc1 = 1 - power(b1, t)
    if nesterov:
        cm, cg = b1 / (1 - power(b1, optax.safe_increment(t))), (1 - b1) / bc1
    else:
        cm, cg = 1 / bc1, 0.0
    return {"b1": b1, "b2": b2, "eps": eps, "eps_root": eps_root, "cm": cm, "cg": cg, "bc2": 1 - power(b2, t)}

