"""JAX primitives for the engine's FFI targets.

Each target gets a primitive of the same name (``fromax_sums``, ``fromax_axpby``, ``fromax_fromage``)
rather than going through ``jax.ffi.ffi_call``: the HLO instruction, and so the event in a
``jax.profiler`` / Perfetto trace, is named after the primitive, so users find ``fromax_fromage.N``
in their traces instead of an anonymous ``ffi_call.N``. The lowering is ``jax.ffi.ffi_lowering``
(typed FFI custom call) registered for every platform: the target name is resolved by the platform
that compiles the program.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np
from jax.core import ShapedArray
from jax.sharding import NamedSharding, PartitionSpec
from jax.extend.core import Primitive
from jax.interpreters import mlir

from fromax.reference import acc_dtype


@functools.lru_cache(maxsize=None)
def _compiled_bind(prim: Primitive, params: tuple) -> Callable:
    """Eager (un-jitted) use: one jitted bind per primitive and params, cached, so repeated eager
    calls reuse the compiled program (jax.jit caches by shape and dtype)."""
    kwargs = dict(params)
    return jax.jit(lambda *args: prim.bind(*args, **kwargs))


def make_primitive(name: str, out_avals: Callable[..., list[ShapedArray]], aliases: Callable[..., dict | None]) -> Primitive:
    """A multiple-results primitive lowering to FFI target ``name``.

    ``aliases(n_operands, n_results, **params)``: ``{operand index: result index}`` for results
    written over their operand (in place when the operand is donated), or None. Params whose names
    start with "_" configure the lowering; the others become FFI attributes (structural integers
    only: hyperparameters are operands).
    """
    prim = Primitive(name)
    prim.multiple_results = True
    prim.def_impl(lambda *args, **params: _compiled_bind(prim, tuple(sorted(params.items())))(*args))
    prim.def_abstract_eval(out_avals)

    def lowering(ctx, *operands, **params):
        alias_map = aliases(len(operands), len(ctx.avals_out), **params)
        attrs = {k: np.int64(v) for k, v in params.items() if not k.startswith("_")}
        return jax.ffi.ffi_lowering(name, operand_output_aliases=alias_map)(ctx, *operands, **attrs)

    mlir.register_lowering(prim, lowering)
    return prim


def _sums_avals(*args, segments: int, streams: int):
    # Per-tensor sums are small and replicated on the operands' mesh (explicit sharding mode); they
    # vary over the manual axes that the operands vary over (shard_map), which the engine has made
    # the same for all operands of one call.
    n = len(args) // streams
    shape = (segments, n, 3 if streams == 2 else 1)
    first = args[0]
    replicated = NamedSharding(first.sharding.mesh, PartitionSpec())
    return [first.update(shape=shape, dtype=acc_dtype(first.dtype), weak_type=False, sharding=replicated)]


def _like_first_half(skip: int):
    # Each output tensor is its input tensor rewritten: same shape, dtype, sharding and varying axes.
    def avals(*args, **params):
        tensors = args[skip:]
        return [x.update(weak_type=False) for x in tensors[: len(tensors) // 2]]

    return avals


def _consecutive(start: int, n_results: int) -> dict:
    """Result i written over operand start + i."""
    return {start + i: i for i in range(n_results)}


# fromax_sums(a_0..a_{n-1}[, b_0..b_{n-1}]; segments, streams) -> [(segments, n, 1|3)]
sums_p = make_primitive("fromax_sums", _sums_avals, lambda n_operands, n_results, **params: None)
# fromax_axpby(coeffs, x_0.., y_0..; segments, _in_place) -> [x_0'..]
axpby_p = make_primitive(
    "fromax_axpby", _like_first_half(1), lambda n_ops, n_res, *, _in_place, **params: _consecutive(1, n_res) if _in_place else None
)
# fromax_fromage(lr, p_bound, init_norms, w_0.., g_0..; delta) -> [w_0'..] (W_new, or W_new - W if delta)
fromage_p = make_primitive(
    "fromax_fromage", _like_first_half(3), lambda n_ops, n_res, *, delta, **params: None if delta else _consecutive(3, n_res)
)
