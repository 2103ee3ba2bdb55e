"""Input checks: leaves (errors name the offending leaf by its pytree path) and hyperparameters
(errors name the optimizer and the argument)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import jax
import numpy as np

SUPPORTED_DTYPES = tuple(np.dtype(d) for d in ("float16", "float32", "float64")) + (np.dtype(jax.numpy.bfloat16),)

# What to do with complex leaves (optax's math on a complex leaf is not the kernels'): named in the
# error a complex leaf raises.
COMPLEX_ADVICE = (
    "For complex parameters wrap the optimizer in optax.contrib.split_real_and_imaginary(...), "
    "which optimizes the real and imaginary parts as real leaves"
)


def leaves_with_paths(tree: Any, what: str) -> tuple[list[str], list[jax.Array], Any]:
    """Flatten ``tree``; every leaf must be an array of a supported float dtype."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths, leaves = [], []
    for path, leaf in flat:
        name = jax.tree_util.keystr(path) or "<root>"
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            raise TypeError(f"fromax: {what} leaf {name} is a {type(leaf).__name__}, not an array")
        if np.issubdtype(np.dtype(dtype), np.complexfloating):
            raise TypeError(f"fromax: {what} leaf {name} is complex ({np.dtype(dtype).name}). {COMPLEX_ADVICE}.")
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
    # ``who`` is an optimizer's qualified name ("fromax.lamb") or a bare one; the message names it once.
    who = who if who.startswith("fromax") else f"fromax: {who}"
    if params is None:
        raise ValueError(f"{who} needs the current params: call update(grads, state, params)")
    g_paths, g_leaves, g_def = leaves_with_paths(grads, "gradient")
    p_paths, p_leaves, p_def = leaves_with_paths(params, "parameter")
    if g_def != p_def:
        raise ValueError(f"{who}: gradient and parameter trees differ:\n  grads:  {g_def}\n  params: {p_def}")
    for name, g, p in zip(p_paths, g_leaves, p_leaves):
        if g.shape != p.shape:
            raise ValueError(f"{who}: leaf {name} has gradient shape {g.shape} but parameter shape {p.shape}")
    return p_paths, g_leaves, p_leaves, p_def


# ---- hyperparameter checks of the fromax.optim facade: ``who`` is the qualified name the error starts
# with. None and schedules pass; every other value goes through the constructor rules below.
def _apply(rule: "Rule", who: str, values: dict[str, Any]) -> None:
    for name, v in values.items():
        if v is not None and not callable(v):
            rule(who, name, v)


def check_nonnegative(who: str, **values: Any) -> None:
    """Each value given (not None, not a schedule) must be a finite scalar >= 0."""
    _apply(NONNEGATIVE, who, values)


def check_positive(who: str, **values: Any) -> None:
    """Each value given (not None, not a schedule) must be a finite scalar > 0."""
    _apply(POSITIVE, who, values)


# ---- constructor arguments: every argument of every optimizer has a rule ----------------------------
# A rule checks one argument's value: ``rule(who, name, value)`` raises a TypeError (wrong kind) or
# ValueError (out of range) that names the optimizer and the argument. Whether None or a schedule is
# accepted comes from the argument's annotation (``Optional[...]``/``| None``; ``ScalarOrSchedule``),
# so the signature stays the one statement of it. Traced values (optax.inject_hyperparams) are
# checked when concrete only.
Rule = Callable[[str, str, Any], None]


def _is_real(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_, str, bytes)):
        return False
    try:
        dtype = np.asarray(v).dtype
    except Exception:  # anything NumPy cannot read as an array is not a real number
        return False
    return np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)


def real(what: str, holds: Callable[[Any], bool]) -> Rule:
    """A real scalar for which ``holds`` (``what`` says it in words)."""

    def rule(who: str, name: str, v: Any) -> None:
        if isinstance(v, jax.core.Tracer):
            return
        if not _is_real(v):
            raise TypeError(f"{who}: {name} must be a real number, got {type(v).__name__} {v!r}")
        if np.ndim(v) != 0 or not holds(np.asarray(v)[()]):
            raise ValueError(f"{who}: {name} must be {what}, got {v!r}")

    return rule


NONNEGATIVE = real("a finite scalar >= 0", lambda v: np.isfinite(v) and v >= 0)
POSITIVE = real("a finite scalar > 0", lambda v: np.isfinite(v) and v > 0)
FINITE = real("a finite scalar", np.isfinite)
BETA = real("in [0, 1)", lambda v: 0 <= v < 1)


def _integer(least: int) -> Rule:
    def rule(who: str, name: str, v: Any) -> None:
        if isinstance(v, jax.core.Tracer):
            return
        integral = isinstance(v, (int, np.integer)) or (isinstance(v, (jax.Array, np.ndarray)) and v.ndim == 0 and np.issubdtype(v.dtype, np.integer))
        if isinstance(v, (bool, np.bool_)) or not integral:  # an int array: optax.inject_hyperparams
            raise TypeError(f"{who}: {name} must be an int >= {least}, got {type(v).__name__} {v!r}")
        if v < least:
            raise ValueError(f"{who}: {name} must be an int >= {least}, got {v!r}")

    return rule


COUNT = _integer(0)
POSITIVE_COUNT = _integer(1)


def FLAG(who: str, name: str, v: Any) -> None:  # a rule, named in capitals like the others
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {type(v).__name__} {v!r}")


def MASK(who: str, name: str, v: Any) -> None:
    """An optax mask: a bool, a callable, or a pytree (of booleans) matching the params."""
    if isinstance(v, (bool, np.bool_)) or callable(v):
        return
    if isinstance(v, (str, bytes, int, float, np.number)) or not jax.tree.leaves(v):
        raise TypeError(f"{who}: {name} must be a bool, a pytree of booleans like the params or a callable returning one, got {type(v).__name__} {v!r}")


def FLOAT_DTYPE(who: str, name: str, v: Any) -> None:
    try:
        dtype = np.dtype(v)
    except TypeError:
        raise TypeError(f"{who}: {name} must be a floating dtype (e.g. jnp.bfloat16) or None, got {v!r}") from None
    if not jax.numpy.issubdtype(dtype, jax.numpy.floating):
        raise TypeError(f"{who}: {name} must be a floating dtype (e.g. jnp.bfloat16) or None, got {dtype.name}")


def TRANSFORMATION(who: str, name: str, v: Any) -> None:
    if not (callable(getattr(v, "init", None)) and callable(getattr(v, "update", None))):
        raise TypeError(f"{who}: {name} must be an optax GradientTransformation, got {type(v).__name__} {v!r}")


def pair(element: Rule) -> Rule:
    """A tuple (or list) of two values, each checked by ``element``."""

    def rule(who: str, name: str, v: Any) -> None:
        if not isinstance(v, (tuple, list)) or len(v) != 2:
            raise TypeError(f"{who}: {name} must be a pair of real numbers, got {type(v).__name__} {v!r}")
        for k, x in enumerate(v):
            element(who, f"{name}[{k}]", x)

    return rule


def INIT_STEP(who: str, name: str, v: Any) -> None:  # DoG's ("distance" | "learning_rate" | "heuristic", value > 0)
    if not (isinstance(v, (tuple, list)) and len(v) == 2 and v[0] in ("distance", "learning_rate", "heuristic")):
        raise ValueError(f"{who}: {name} must be ('distance' | 'learning_rate' | 'heuristic', value), got {v!r}")
    POSITIVE(who, f"{name}[1]", v[1])


def checked(**rules: Rule) -> Callable[[Callable], Callable]:
    """Decorate an optimizer factory so that each call first checks every argument by its rule.
    Every parameter but ``backend`` must have one (checked when the module is imported)."""

    def decorate(factory: Callable) -> Callable:
        signature = inspect.signature(factory)
        who = f"fromax.{factory.__name__}"
        params = {k: p for k, p in signature.parameters.items() if k != "backend"}
        if set(params) != set(rules):
            raise RuntimeError(f"{who}: arguments without a rule {sorted(set(params) - set(rules))}, rules without an argument {sorted(set(rules) - set(params))}")
        optional = {k for k, p in params.items() if p.default is None or "None" in str(p.annotation) or "Optional" in str(p.annotation)}
        scheduled = {k for k, p in params.items() if "Schedule" in str(p.annotation)}

        @functools.wraps(factory)
        def make(*args: Any, **kwargs: Any):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{who}: {e}") from None
            for name, v in bound.arguments.items():
                if name == "backend":
                    continue
                if v is None:
                    if name in optional:
                        continue
                    raise TypeError(f"{who}: {name} must not be None")
                if name in scheduled and callable(v):
                    continue
                rules[name](who, name, v)
            return factory(*args, **kwargs)

        return make

    return decorate
