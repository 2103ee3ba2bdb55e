"""``per_tensor_norms``: the Euclidean norm of every leaf of a pytree, in one fused reduction."""

from __future__ import annotations

from typing import Any

import jax

from fromax import _engine, _ffi
from fromax.reference import acc_dtype
from fromax._validate import leaves_with_paths


def per_tensor_norms(tree: Any, *, backend: str = "auto") -> Any:
    r"""Per-leaf Euclidean norms :math:`\|x_i\|_2 = \sqrt{\sum_j x_{ij}^2}` of a pytree.

    One read of every leaf in a constant number of calls (one ``fromax_norm`` per accumulator group), accumulated in
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
    rows = _engine.rows("norm", len(leaves), _engine.coeff_dtype(leaves))
    norms = _engine.reduce("norm", rows, [leaves], kernels=_ffi.use_kernels(backend), fold=False)[:, 0]
    return jax.tree_util.tree_unflatten(treedef, [norms[i].astype(acc_dtype(x.dtype)) for i, x in enumerate(leaves)])
