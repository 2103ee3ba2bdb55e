"""Input checks: leaves (errors name the offending leaf by its pytree path) and hyperparameters
(errors name the optimizer and the argument)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

SUPPORTED_DTYPES = tuple(np.dtype(d) for d in ("float16", "float32", "float64")) + (np.dtype(jax.numpy.bfloat16),)


def leaves_with_paths(tree: Any, what: str) -> tuple[list[str], list[jax.Array], Any]:
    """Flatten ``tree``; every leaf must be an array of a supported float dtype."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths, leaves = [], []
    for path, leaf in flat:
        name = jax.tree_util.keystr(path) or "<root>"
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            raise TypeError(f"fromax: {what} leaf {name} is a {type(leaf).__name__}, not an array")
        if np.dtype(dtype) not in SUPPORTED_DTYPES:
            raise TypeError(
                f"fromax: {what} leaf {name} has dtype {np.dtype(dtype).name}; fromax optimizes floating "
                "leaves only (float16, bfloat16, float32, float64). Exclude it, e.g. with "
                "optax.masked or optax.multi_transform."
            )
        paths.append(name)
        leaves.append(leaf)
    return paths, leaves, treedef


def matching_leaves(grads: Any, params: Any, who: str) -> tuple[list[str], list[jax.Array], list[jax.Array], Any]:
    """Leaves of ``grads`` and ``params``, checked to have the same structure and shapes."""
    if params is None:
        raise ValueError(f"fromax: {who} needs the current params: call update(grads, state, params)")
    g_paths, g_leaves, g_def = leaves_with_paths(grads, "gradient")
    p_paths, p_leaves, p_def = leaves_with_paths(params, "parameter")
    if g_def != p_def:
        raise ValueError(f"fromax: {who}: gradient and parameter trees differ:\n  grads:  {g_def}\n  params: {p_def}")
    for name, g, p in zip(p_paths, g_leaves, p_leaves):
        if g.shape != p.shape:
            raise ValueError(f"fromax: {who}: leaf {name} has gradient shape {g.shape} but parameter shape {p.shape}")
    return p_paths, g_leaves, p_leaves, p_def


# ---- hyperparameter checks: ``who`` is the qualified name the error starts with ---------------------
def _concrete(who: str, name: str, v: Any) -> bool:
    """Whether ``v`` is a value to check now (not None, a schedule or a traced value); a value
    that is not a real number is a TypeError naming the argument."""
    if v is None or callable(v) or isinstance(v, jax.core.Tracer):
        return False
    dtype = np.asarray(v).dtype
    if isinstance(v, bool) or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise TypeError(f"{who}: {name} must be a real number, got {type(v).__name__} {v!r}")
    return True


def _check(who: str, values: dict[str, Any], holds: Any, rule: str) -> None:
    for name, v in values.items():
        if _concrete(who, name, v) and not (np.ndim(v) == 0 and holds(v)):
            raise ValueError(f"{who}: {name} must be {rule}, got {v!r}")


def check_nonnegative(who: str, **values: Any) -> None:
    """Each concrete value must be a finite scalar >= 0."""
    _check(who, values, lambda v: np.isfinite(v) and v >= 0, "a finite scalar >= 0")


def check_positive(who: str, **values: Any) -> None:
    """Each concrete value must be a finite scalar > 0."""
    _check(who, values, lambda v: np.isfinite(v) and v > 0, "a finite scalar > 0")


def check_beta(who: str, **values: Any) -> None:
    """Each concrete value must be a scalar in [0, 1) (a decay rate)."""
    _check(who, values, lambda v: 0 <= v < 1, "in [0, 1)")
