"""``fromax.step`` on transformations that are not a fromax optimizer themselves.

Two ways a fromax optimizer inside another transformation still gets its fused, in-place step:

* **Chains** (``optax.chain``, nested too) whose last element is a fromax optimizer: the elements
  before it run as optax runs them, and the optimizer's fused step takes their output as its
  gradient, instead of an increment that ``optax.apply_updates`` adds. Of the elements just before
  it, those its kernels can fold (:mod:`fromax._prologue`: ``clip_by_global_norm``, ``scale``,
  ``scale_by_schedule``, ``add_decayed_weights`` without a mask, ``clip``) are not run as passes
  of their own: their update is still called, for their state (the count of a schedule), but its
  output is left unused (XLA drops it) and the optimizer reads the gradient before them, with
  their math as a prologue of its own pass.
* **Wrappers that pass the update through** (``optax.inject_hyperparams``, a chain nested in one):
  ``tx.update`` is traced with the parameters marked, the fromax optimizer called with them
  returns the fused step's new parameters, and these are used if ``tx.update`` returned them
  untouched; otherwise (``apply_if_finite``, ``MultiSteps``, an element after the optimizer) the
  step is traced again as ``tx.update`` + ``optax.apply_updates``.

:func:`step_plan` says, without running anything, which of these a transformation gets, and
``fromax.step`` logs each fallback to the optax contract on the ``"fromax"`` logger (DEBUG).
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
from typing import Any, Callable

import jax
import optax

from fromax import _prologue

log = logging.getLogger("fromax")

# Of the optax transformations a chain may run before a fromax optimizer, those folded into its
# kernels: the name of their update function -> (the prologue op they become, the variable of its
# closure that holds their parameter); see _fold_op. Another optax version naming them otherwise
# is not folded (its elements then run as optax runs them).
_FOLDABLE = {
    "clip_by_global_norm.<locals>.update_fn": ("global_clip", "max_norm"),
    "scale.<locals>.update_fn": ("scale", "step_size"),
    "scale_by_schedule.<locals>.update_fn": ("scale", "step_size_fn"),
    "add_decayed_weights.<locals>.update_fn": ("add", "weight_decay"),
    "clip.<locals>.update_fn": ("clamp", "max_delta"),
}


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """What :func:`fromax.step` does with a transformation.

    Attributes
    ----------
    fused : bool
        True: the optimizer's fused step writes the new parameters (in place when donated);
        False: ``tx.update`` + ``optax.apply_updates``.
    folded : tuple of str
        Chain elements folded into the optimizer's own pass over memory.
    unfolded : tuple of str
        Chain elements run as their own passes before it.
    how : str
        How the plan was found, or why the step is not fused.
    """

    fused: bool
    folded: tuple[str, ...] = ()
    unfolded: tuple[str, ...] = ()
    how: str = ""


def _closure(fn: Callable) -> dict[str, Any]:
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    return dict(zip(code.co_freevars, (c.cell_contents for c in cells))) if code is not None else {}


def _unwrap(fn: Callable) -> Callable:
    """The update function behind ``optax.with_extra_args_support``'s wrapper."""
    while getattr(fn, "__qualname__", "").endswith("with_extra_args_support.<locals>.update") and "tx" in _closure(fn):
        fn = _closure(fn)["tx"].update
    return fn


def _is_optax(fn: Callable) -> bool:
    return getattr(fn, "__module__", "").startswith("optax.")


def _chain_update_fns(fn: Callable) -> tuple | None:
    fn = _unwrap(fn)
    if _is_optax(fn) and fn.__qualname__ == "chain.<locals>.update_fn" and "update_fns" in _closure(fn):
        return tuple(_closure(fn)["update_fns"])
    return None


def _name(fn: Callable) -> str:
    fn = _unwrap(fn)
    qualname = getattr(fn, "__qualname__", repr(fn))
    return qualname.split(".<locals>")[0] if ".<locals>" in qualname else qualname


@dataclasses.dataclass(frozen=True)
class _Chain:
    """A chain flattened: its elements' update functions (as the chain calls them), the path of each
    one's state in the chain's (nested tuple) state, the index of the first folded element, and
    the fromax optimizer (the last element)."""

    fns: tuple
    paths: tuple
    first_folded: int
    core: Callable


def _flatten(fns: tuple, prefix: tuple = ()) -> list[tuple[Callable, tuple]]:
    out = []
    for i, fn in enumerate(fns):
        inner = _chain_update_fns(fn)
        out.extend(_flatten(inner, prefix + (i,)) if inner is not None else [(fn, prefix + (i,))])
    return out


def _fold_kind(fn: Callable) -> str | None:
    fn = _unwrap(fn)
    kind, variable = _FOLDABLE.get(getattr(fn, "__qualname__", ""), (None, None))
    return kind if _is_optax(fn) and variable in _closure(fn) else None


@functools.lru_cache(maxsize=256)
def _chain_plan(update: Callable) -> _Chain | None:
    fns = _chain_update_fns(update)
    if not fns:
        return None
    flat = _flatten(fns)
    core = _unwrap(flat[-1][0])
    if getattr(core, "fromax_fused_step", None) is None:
        return None
    folds = getattr(core, "fromax_folds", frozenset())
    first, clamps = len(flat) - 1, 0
    while first > 0:
        kind = _fold_kind(flat[first - 1][0])
        if kind is None or kind not in folds or (kind == "clamp" and clamps):
            break
        clamps += kind == "clamp"
        first -= 1
    return _Chain(tuple(f for f, _ in flat), tuple(p for _, p in flat), first, core)


def step_plan(tx: optax.GradientTransformation) -> StepPlan:
    """What :func:`fromax.step` does with ``tx``: the fused step (which chain elements it folds and
    which run before it), or ``tx.update`` + ``optax.apply_updates`` and why.

    Examples
    --------
    >>> import optax, fromax
    >>> fromax.step_plan(optax.chain(optax.clip_by_global_norm(1.0), fromax.adamw(1e-3)))
    StepPlan(fused=True, folded=('clip_by_global_norm',), unfolded=(), how='chain ending in a fromax optimizer')
    """
    if getattr(tx.update, "fromax_fused_step", None) is not None:
        return StepPlan(True, how="a fromax optimizer")
    chain = _chain_plan(tx.update)
    if chain is not None:
        names = [_name(f) for f in chain.fns[:-1]]
        return StepPlan(True, tuple(names[chain.first_folded :]), tuple(names[: chain.first_folded]), "chain ending in a fromax optimizer")
    factory = _closure(_unwrap(tx.update)).get("inner_factory")
    if _is_optax(_unwrap(tx.update)) and getattr(factory, "fromax_factory", False):
        return StepPlan(True, how="optax.inject_hyperparams of a fromax optimizer")
    return StepPlan(False, how="no fromax optimizer ends a chain here: tx.update + optax.apply_updates, unless a fromax "
                               "optimizer inside returns the step's update unchanged (checked when traced)")


# ---- running a chain --------------------------------------------------------------------------------
def _get(tree: Any, path: tuple) -> Any:
    for i in path:
        tree = tree[i]
    return tree


def _set(tree: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    items = list(tree)
    items[path[0]] = _set(items[path[0]], path[1:], value)
    return type(tree)(items) if not hasattr(tree, "_fields") else type(tree)(*items)


def _fold_op(fn: Callable, state: Any) -> _prologue.Op:
    """The prologue op of a foldable element; a schedule (scale_by_schedule, a scheduled weight
    decay) is read at the step count of the element's state."""
    fn = _unwrap(fn)
    kind, variable = _FOLDABLE[fn.__qualname__]
    value = _closure(fn)[variable]
    return _prologue.Op(kind, value(state.count) if callable(value) else value)


def _run_chain(chain: _Chain, grads: Any, state: Any, params: Any, extra: dict) -> tuple[Any, Any]:
    updates, ops, new_state = grads, [], state
    for i, (fn, path) in enumerate(zip(chain.fns, chain.paths)):
        s = _get(state, path)
        if i == len(chain.fns) - 1:
            with _prologue.folded(_prologue.Folding(ops) if ops else None):
                updates, s = chain.core.fromax_fused_step(updates, s, params, **extra)
        elif i >= chain.first_folded:
            ops.append(_fold_op(fn, s))
            _, s = fn(updates, s, params, **extra)  # for its state; its output is folded instead
        else:
            updates, s = fn(updates, s, params, **extra)
        new_state = _set(new_state, path, s)
    return updates, new_state


# ---- wrappers that pass the update through -------------------------------------------------------
@dataclasses.dataclass
class _Marked:
    params: Any
    result: Any = None
    claims: int = 0


_MARKED: contextvars.ContextVar[_Marked | None] = contextvars.ContextVar("fromax_marked_step", default=None)


def claim(params: Any) -> _Marked | None:
    """Called by a fromax optimizer's ``update``: the marked step, if ``params`` are its parameters
    (the optimizer then returns its fused step's new parameters, see :func:`_run_marked`)."""
    marked = _MARKED.get()
    if marked is not None and marked.params is params:
        marked.claims += 1
        return marked
    return None


def _run_marked(tx: optax.GradientTransformation, grads: Any, state: Any, params: Any, extra: dict) -> tuple[Any, Any]:
    marked = _Marked(params)
    token = _MARKED.set(marked)
    try:
        out, new_state = optax.with_extra_args_support(tx).update(grads, state, params, **extra)
    finally:
        _MARKED.reset(token)
    if marked.claims == 0:  # no fromax optimizer received these params: out is the optax update
        log.debug("fromax.step: no fromax optimizer in %r takes the step's parameters as they are; "
                  "running tx.update + optax.apply_updates", tx)
        return optax.apply_updates(params, out), new_state  # out is tx.update's: not run again
    leaves, result = jax.tree.leaves(out), jax.tree.leaves(marked.result)
    if marked.claims == 1 and jax.tree.structure(out) == jax.tree.structure(marked.result) and all(a is b for a, b in zip(leaves, result)):
        return out, new_state
    log.debug("fromax.step: the fromax optimizer inside %r does not produce the step's update unchanged; "
              "running tx.update + optax.apply_updates", tx)
    return contract(tx, grads, state, params, extra)


# ---- fromax.step ----------------------------------------------------------------------------------
def run(tx: optax.GradientTransformation, grads: Any, state: Any, params: Any, extra: dict) -> tuple[Any, Any]:
    """``fromax.step`` for a transformation that is not a fromax optimizer, traced."""
    chain = _chain_plan(tx.update)
    if chain is not None:
        return _run_chain(chain, grads, state, params, extra)
    return _run_marked(tx, grads, state, params, extra)


def contract(tx: optax.GradientTransformation, grads: Any, state: Any, params: Any, extra: dict) -> tuple[Any, Any]:
    """``tx.update`` + ``optax.apply_updates``: the step of a transformation fromax cannot fuse, and
    the eager ``fromax.step`` of any transformation that is not a fromax optimizer.

    Eagerly it is not compiled as one program: the transformation's own functions may read Python
    state on every call (a schedule reading a learning rate a scheduler sets, as ``fromax.optim``
    does), which a cached program would freeze at its first trace. A fromax optimizer inside it
    still runs its one compiled program (``fromax._eager``), and the other elements' operations are
    compiled once per shape by JAX's op-by-op dispatch."""
    updates, new_state = optax.with_extra_args_support(tx).update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), new_state
