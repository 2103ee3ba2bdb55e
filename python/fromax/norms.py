"""``per_tensor_norms``: the Euclidean norm of every leaf of a pytree, in one fused reduction."""

from __future__ import annotations

from typing import Any

import jax

from fromax import _engine, _ffi, reference
from fromax._validate import leaves_with_paths


def squared_norms(leaves: list[jax.Array], use_kernels: bool) -> list[jax.Array]:
    """``sum(x**2)`` of each leaf (accumulator dtype), one reduction call per accumulator group."""
    def group_sums(_, idx):
        group = [leaves[i] for i in idx]
        s = _engine.sums(group) if use_kernels else reference.sums(group)
        return [s[k, 0] for k in range(len(idx))]

    return _engine.map_groups(leaves, group_sums)


def per_tensor_norms(tree: Any, *, backend: str = "auto") -> Any:
    r"""Per-leaf Euclidean norms :math:`\|x_i\|_2 = \sqrt{\sum_j x_{ij}^2}` of a pytree.

    One read of every leaf in a constant number of calls (one per accumulator group), accumulated in
    f32 for f32/bf16/f16 leaves and in f64 for f64 leaves, in a fixed, thread-count-independent order.

    Parameters
    ----------
    tree : pytree of float arrays (float16, bfloat16, float32, float64)
    backend : {"auto", "ffi", "xla"}
        "auto" uses the compiled kernel where registered for JAX's default platform, "ffi" requires
        it, "xla" uses the pure-JAX reference.

    Returns
    -------
    A pytree of the same structure with 0-d norms (float32, or float64 for float64 leaves).

    Examples
    --------
    >>> import jax.numpy as jnp, fromax
    >>> fromax.per_tensor_norms({"w": jnp.full((2, 2), 0.5), "b": jnp.zeros(3)})
    {'b': Array(0., dtype=float32), 'w': Array(1., dtype=float32)}
    """
    _, leaves, treedef = leaves_with_paths(tree, "tree")
    if not leaves:
        return tree
    sq = squared_norms(leaves, _ffi.use_kernels(backend))
    return jax.tree_util.tree_unflatten(treedef, [reference.norm_from_squared(s) for s in sq])
