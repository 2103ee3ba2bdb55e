"""``stacked_axes``: the layer-wise optimizers on stacked (scanned) layers, one slice per layer.

A model that stacks its repeated blocks (``nnx.scan``, ``nn.scan``, Equinox's vmapped layers,
MaxText's ``scan_layers``) holds its 24 attention kernels as one leaf of shape (24, d, d). Fromage,
LARS, LAMB and NovoGrad are defined per layer: with ``stacked_axes`` naming the stacked axes of each
leaf, their per-tensor quantities (norms, trust ratios, NovoGrad's moment, ``p_bound``'s initial
norms) are per slice, and a (24, d, d) leaf stacked on axis 0 behaves exactly as 24 (d, d) leaves.

How: the leaves are grouped by their stacked axes and sizes, and each group is one ``jax.vmap`` of the
optimizer over those axes, which is what the engine runs as ``segments``: a group is still one call
per pass, whatever its number of leaves and slices, so a step makes a constant number of calls (one
set per group: unstacked leaves, and one per distinct stack). Stacked axes that lead cost nothing;
others are moved to the front by vmap (a transpose of the leaf and of its gradient, state and
result each step), so lead with them where the model allows.

The state is one state of the optimizer per group, its stacked dimensions leading (``StackedState``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np
import optax

from fromax._engine import Output
from fromax._optimizer_base import mask_vector, transformation
from fromax._validate import leaves_with_paths, matching_leaves

Axes = tuple[int, ...]
# What ``stacked_axes`` takes: None (no stacked axis), an int or a tuple of ints (every leaf's),
# a pytree prefix of the params with such axes, or a callable ``(key path, leaf) -> axes``.
StackedAxes = Any


class StackedState(NamedTuple):
    """State of an optimizer built with ``stacked_axes``: the optimizer's own state for each group of
    leaves with the same stacked axes and sizes (in order of first appearance), stacked dimensions
    leading."""

    groups: tuple


def _is_axes(x: Any) -> bool:
    return x is None or isinstance(x, (int, np.integer)) and not isinstance(x, bool) or (
        isinstance(x, tuple) and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in x)
    )


def check_stacked_axes(who: str, stacked_axes: Any) -> None:
    """At construction: None, an int, a tuple of ints, a callable ``(path, leaf) -> axes``, or a pytree
    prefix of the params whose leaves are axes (None, an int or a tuple of ints)."""
    if stacked_axes is None or callable(stacked_axes) or _is_axes(stacked_axes):
        return
    if isinstance(stacked_axes, (np.ndarray, jax.Array)):  # optax.inject_hyperparams made an int an array
        raise TypeError(f"{who}: stacked_axes must be a Python int or tuple, got an array {stacked_axes!r}; under "
                        "optax.inject_hyperparams pass a tuple (stacked_axes=(0,)) or list it in static_args")
    if isinstance(stacked_axes, (str, bytes, float, complex, bool)):
        raise TypeError(f"{who}: stacked_axes must be None, an int, a tuple of ints, a callable (path, leaf) -> axes "
                        f"or a pytree prefix of the params with such axes, got {type(stacked_axes).__name__} {stacked_axes!r}")
    bad = [x for x in jax.tree.leaves(stacked_axes, is_leaf=_is_axes) if not _is_axes(x)]
    if bad:
        raise TypeError(f"{who}: stacked_axes' leaves must be None, an int or a tuple of ints, got {bad[0]!r}")


def _normalised(who: str, path: str, axes: Any, ndim: int) -> Axes:
    if axes is None:
        return ()
    axes = (axes,) if not isinstance(axes, tuple) else axes
    if not _is_axes(axes):
        raise TypeError(f"{who}: stacked_axes for leaf {path} must be None, an int or a tuple of ints, got {axes!r}")
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{who}: stacked axis {a} is out of range for leaf {path} of rank {ndim}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{who}: stacked_axes for leaf {path} repeats an axis: {axes!r}")
    return tuple(sorted(out))


def leaf_axes(who: str, stacked_axes: Any, params: Any, names: list[str], leaves: list) -> list[Axes]:
    """Each parameter leaf's stacked axes (sorted, non-negative), in flattening order (``names`` and
    ``leaves``: the params' :func:`leaves_with_paths`)."""
    if callable(stacked_axes):
        given = [stacked_axes(path, x) for path, x in jax.tree_util.tree_flatten_with_path(params)[0]]
    elif _is_axes(stacked_axes):
        given = [stacked_axes] * len(leaves)
    else:
        try:
            spread = jax.tree.map(lambda a, sub: [a] * len(jax.tree.leaves(sub)), stacked_axes, params, is_leaf=_is_axes)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: stacked_axes is not a pytree prefix of the params: {e}") from None
        given = [a for group in jax.tree.leaves(spread, is_leaf=lambda x: isinstance(x, list)) for a in group]
    return [_normalised(who, n, a, np.ndim(x)) for n, a, x in zip(names, given, leaves)]


class _Groups:
    """The leaves of a tree grouped by (stacked axes, their sizes): ``groups[k]`` lists leaf indices."""

    def __init__(self, who: str, stacked_axes: Any, params: Any):
        self.names, leaves, self.treedef = leaves_with_paths(params, "parameter")
        axes = leaf_axes(who, stacked_axes, params, self.names, leaves)
        keys: dict[tuple, list[int]] = {}
        for i, (a, x) in enumerate(zip(axes, leaves)):
            keys.setdefault((a, tuple(np.shape(x)[k] for k in a)), []).append(i)
        self.keys = list(keys)
        self.members = list(keys.values())
        self.n = len(leaves)

    def split(self, tree: Any) -> list[dict]:
        """The tree's leaves per group, as dicts keyed by their paths (errors name the leaf)."""
        return self.split_leaves(self.treedef.flatten_up_to(tree))

    def split_leaves(self, leaves: Sequence[Any]) -> list[dict]:
        """:meth:`split` of the tree's leaves in flattening order."""
        return [{self.names[i]: leaves[i] for i in members} for members in self.members]

    def join(self, parts: Sequence[dict]) -> Any:
        leaves: list[Any] = [None] * self.n
        for members, part in zip(self.members, parts):
            for i in members:
                leaves[i] = part[self.names[i]]
        return self.treedef.unflatten(leaves)


def _over_slices(fn: Callable, axes: Axes, kinds: Sequence[str], out_kinds: Sequence[str]) -> Callable:
    """``fn`` vmapped over ``axes`` (sorted): an argument or output of kind "leaf" is mapped over the
    stacked axes where they are, one of kind "state" over its leading dimensions, one of kind None
    not at all."""
    for depth in reversed(range(len(axes))):
        axis = axes[depth] - depth  # the outer vmaps have removed the axes before it
        spec = lambda kind, axis=axis: axis if kind == "leaf" else 0 if kind == "state" else None  # noqa: E731
        out_axes = tuple(spec(k) for k in out_kinds)
        fn = jax.vmap(fn, in_axes=tuple(spec(k) for k in kinds), out_axes=out_axes if len(out_axes) > 1 else out_axes[0])
    return fn


def per_slice(who: str, build: Callable[[dict], optax.GradientTransformation], masks: dict, stacked_axes: Any) -> optax.GradientTransformationExtraArgs:
    """The optimizer ``build(masks)`` made per slice over ``stacked_axes``. ``masks``: its mask
    arguments, resolved on the whole params (a callable sees the stacked leaves) and handed to each
    group's optimizer as that group's booleans."""

    def group_optimizers(params: Any, groups: _Groups) -> list[optax.GradientTransformation]:
        resolved = {name: _resolve_mask(who, name, m, params) for name, m in masks.items()}
        per_group = {name: groups.split_leaves(r) if isinstance(r, list) else [r] * len(groups.members) for name, r in resolved.items()}
        return [build({name: masks_k[k] for name, masks_k in per_group.items()}) for k in range(len(groups.members))]

    def init_fn(params: Any) -> StackedState:
        groups = _Groups(who, stacked_axes, params)
        txs = group_optimizers(params, groups)
        states = []
        for (axes, _), tx, part in zip(groups.keys, txs, groups.split(params)):
            states.append(_over_slices(tx.init, axes, ("leaf",), ("state",))(part))
        return StackedState(tuple(states))

    def apply(grads: Any, state: StackedState, params: Any, delta: Output, **extra: Any):
        matching_leaves(grads, params, who)  # the same structure and shapes, or an error naming the leaf
        groups = _Groups(who, stacked_axes, params)
        if not isinstance(state, StackedState) or len(state.groups) != len(groups.members):
            raise ValueError(f"{who}: the state does not match the params' stacked groups; was it made by this transformation's init?")
        txs = group_optimizers(params, groups)
        outs, states = [], []
        for (axes, _), tx, g, s, p in zip(groups.keys, txs, groups.split(grads), state.groups, groups.split(params)):
            step = _step_of(tx, delta)
            one = lambda g, s, p, step=step: step(g, s, p, **extra)  # noqa: E731  # extra args: not mapped
            out, new_state = _over_slices(one, axes, ("leaf", "state", "leaf"), ("leaf", "state"))(g, s, p)
            outs.append(out)
            states.append(new_state)
        return groups.join(outs), StackedState(tuple(states))

    return transformation(init_fn, apply)


def _step_of(tx: optax.GradientTransformation, delta: Output) -> Callable:
    if delta == Output.NEW:
        return tx.update.fromax_fused_step
    if delta == Output.INCREMENT_STATE_IN_PLACE:
        return tx.update.fromax_update_state_in_place
    return tx.update


def _resolve_mask(who: str, name: str, mask: Any, params: Any) -> Any:
    """True/False/None stay; a pytree or callable becomes the list of each leaf's boolean."""
    if mask is None or isinstance(mask, (bool, np.bool_)):
        return mask
    n = len(jax.tree.leaves(params))
    return [bool(v) for v in mask_vector(mask, params, n, f"{who}: {name}")]


def stackable(factory: Callable) -> Callable:
    """Add the keyword-only ``stacked_axes=None`` to an optimizer factory: given, the optimizer is
    built per slice (:func:`per_slice`); its mask arguments (names containing "mask") are resolved
    on the whole params."""
    signature = inspect.signature(factory)
    who = f"fromax.{factory.__name__}"

    @functools.wraps(factory)
    def make(*args: Any, stacked_axes: Any = None, **kwargs: Any) -> optax.GradientTransformationExtraArgs:
        if stacked_axes is None:
            return factory(*args, **kwargs)
        check_stacked_axes(who, stacked_axes)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        masks = {k: v for k, v in arguments.items() if "mask" in k}
        factory(**arguments)  # the arguments' own checks, at construction
        return per_slice(who, lambda resolved: factory(**{**arguments, **resolved}), masks, stacked_axes)

    params = list(signature.parameters.values())
    params.append(inspect.Parameter("stacked_axes", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="StackedAxes"))
    make.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return make
