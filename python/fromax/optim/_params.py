"""Registered parameters: brainstate States found in a pytree, and the gradients that match them.

A registered tree is any pytree whose leaves are ``brainstate.State`` objects (typically
``model.states(brainstate.ParamState)``, a dict keyed by path tuples). A State's value may itself be
a pytree (a ``Linear``'s ``{'weight', 'bias'}``). Gradients come as the same structure with values
in place of States (what ``brainstate.transform.grad`` returns); each State's gradient is found by
following its path from the root of ``grads``, so the gradients of a whole model serve every
parameter group registered from sub-dicts of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import brainstate
import jax

Path = tuple


def is_state(x: Any) -> bool:
    return isinstance(x, brainstate.State)


def _key(entry: Any) -> Any:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    raise TypeError(f"unsupported pytree path entry {entry!r}")


def path_name(path: Path) -> str:
    return jax.tree_util.keystr(path)


@dataclass
class Registered:
    """The States of one parameter group, in the order of its pytree."""

    treedef: Any  # the registered tree, States as leaves
    paths: list  # each State's path from the root of the registered tree (and of the grads)
    states: list

    @classmethod
    def from_tree(cls, who: str, tree: Any) -> "Registered":
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_state)
        if not leaves:
            raise ValueError(f"{who}: no parameters given (an empty pytree)")
        for path, leaf in leaves:
            if not is_state(leaf):
                raise TypeError(
                    f"{who}: every parameter must be a brainstate.State (e.g. model.states(brainstate.ParamState)); "
                    f"{path_name(path) or 'the tree'} is a {type(leaf).__name__}"
                )
        return cls(treedef, [p for p, _ in leaves], [s for _, s in leaves])

    def values(self) -> Any:
        return self.treedef.unflatten([s.value for s in self.states])

    def write(self, new_tree: Any) -> None:
        for state, value in zip(self.states, self.treedef.flatten_up_to(new_tree)):
            state.value = value

    def grads(self, grads: Any) -> Any:
        """This group's gradients, in its registered structure."""
        return self.treedef.unflatten([_follow(grads, p) for p in self.paths])


def _follow(grads: Any, path: Path) -> Any:
    node = grads
    for entry in path:
        key = _key(entry)
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            try:
                node = getattr(node, key)
            except (AttributeError, TypeError):
                raise KeyError(f"no gradient for the registered parameter {path_name(path)}") from None
    if node is None:
        raise ValueError(f"the gradient of {path_name(path)} is None")
    return node


def check_no_unknown(grads: Any, groups: list[Registered]) -> None:
    """Every leaf of ``grads`` must lie under a registered State's path (a gradient for a
    parameter the optimizer does not own is a bug in the caller, not something to skip)."""
    known = {tuple(_key(e) for e in p) for g in groups for p in g.paths}
    depths = sorted({len(k) for k in known})
    for path, _ in jax.tree_util.tree_flatten_with_path(grads)[0]:
        keys = tuple(_key(e) for e in path)
        if not any(keys[:d] in known for d in depths):
            raise KeyError(f"gradient for {path_name(path)}, which is not a registered parameter")


class ParamStates:
    """The registered States of every group, read as ``braintools``' ``param_states`` is: the merged
    tree of States (``to_pytree``), of their values (``to_pytree_value``), or by path (``to_dict``).
    A view: registering more parameters shows here."""

    def __init__(self, groups: list[Registered]):
        self._groups = groups

    def _trees(self, leaf) -> list:
        return [g.treedef.unflatten([leaf(s) for s in g.states]) for g in self._groups]

    def _merge(self, trees: list) -> Any:
        if len(trees) == 1:
            return trees[0]
        if all(isinstance(t, dict) for t in trees):
            return {k: v for t in trees for k, v in t.items()}
        return tuple(trees)

    def to_pytree(self) -> Any:
        return self._merge(self._trees(lambda s: s))

    def to_pytree_value(self) -> Any:
        return self._merge(self._trees(lambda s: s.value))

    def to_dict(self) -> dict:
        return {path_name(p): s for g in self._groups for p, s in zip(g.paths, g.states)}

    def __len__(self) -> int:
        return sum(len(g.states) for g in self._groups)

    def __iter__(self):
        return iter(self.to_dict().values())
