"""JAX primitives for the engine's FFI targets.

Each target gets a primitive of the same name (``fromax_fromage``, ``fromax_adamw``, ...; see
:mod:`fromax._engine`) rather than going through ``jax.ffi.ffi_call``: the HLO instruction, and so the
event in a ``jax.profiler`` / Perfetto trace, is named after the primitive, so users find
``fromax_fromage.N`` in their traces instead of an anonymous ``ffi_call.N``. The lowering is ``jax.ffi.ffi_lowering``
(typed FFI custom call) registered for every platform: the target name is resolved by the platform
that compiles the program.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import jax
import numpy as np
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.extend.mlir import ir
from jax.extend.mlir.dialects import stablehlo
from jax.interpreters import mlir



@functools.lru_cache(maxsize=None)
def _compiled_bind(prim: Primitive, params: tuple) -> Callable:
    """Eager (un-jitted) use: one jitted bind per primitive and params, cached, so repeated eager
    calls reuse the compiled program (jax.jit caches by shape and dtype)."""
    kwargs = dict(params)
    return jax.jit(lambda *args: prim.bind(*args, **kwargs))


def make_primitive(
    name: str, out_avals: Callable[..., list[ShapedArray]], aliases: Callable[..., dict | None], *, guarded: bool = False
) -> Primitive:
    """A multiple-results primitive lowering to FFI target ``name``.

    ``aliases(n_operands, n_results, **params)``: ``{operand index: result index}`` for results
    written over their operand (in place when the operand is donated), or None. Params whose names
    start with "_" configure the lowering; the others become FFI attributes (structural integers
    only: hyperparameters are operands).

    ``guarded``: the target takes a compile-time guard (see :func:`_lower`): two operands before
    the coefficients, and an extra result 0 written over operand 0 (never touched by the kernel).
    """
    prim = Primitive(name)
    prim.multiple_results = True
    prim.def_impl(lambda *args, **params: _compiled_bind(prim, tuple(sorted(params.items())))(*args))
    prim.def_abstract_eval(out_avals)

    def lowering(ctx, *operands, layouts: dict, cost_hint: bool, **params):
        alias_map = aliases(len(operands), len(ctx.avals_out), **params)
        attrs = {k: np.int64(v) for k, v in params.items() if not k.startswith("_")}
        return _lower(name, ctx, operands, alias_map, attrs, guarded, layouts, cost_hint)

    mlir.register_lowering(prim, functools.partial(lowering, layouts={}, cost_hint=False))
    mlir.register_lowering(prim, functools.partial(lowering, layouts=_CPU_LAYOUTS, cost_hint=True), platform="cpu")
    return prim


# On the CPU, layouts are left to XLA, whose CPU layout assignment gives an FFI call's array
# operands and results the default (row-major) layout on its own (tests/test_compiled_program.py
# checks leaves that XLA computes through transposes); stating them makes XLA's layout assignment
# put a copy in front of every operand a result is written over (removed again later, but each is
# one more instruction for the fusion pass to weigh; see _lower). Other platforms (CUDA) keep the
# stated row-major layouts: untested without them.
_CPU_LAYOUTS = (
    {"skip_ffi_layout_processing": True}
    if "skip_ffi_layout_processing" in inspect.signature(jax.ffi.ffi_lowering).parameters
    else {}
)


# XLA's CPU runtime runs an executable it estimates at under 1000 flops inline, on the calling
# thread (PjRtCpuLoadedExecutable's `cheap_computation_`: cheaper than a thread switch), and its cost
# analysis counts a custom call as -1 flops. A jitted program made only of fromax calls (a fused step
# jitted on its own) would so run synchronously: the caller blocked for the whole step, the step's
# output buffers allocated on the caller's thread instead of alongside it (measured on many_small,
# LARS with its state not donated: 3-7 ms per step). A call that reads at least _ASYNC_ELEMENTS
# elements (where the work outweighs the thread switch: the demo's 6-tensor MLP step, well under
# that, measured 198 us with a hint at 1024 elements against 122 us inline) tells XLA so: its guard is a fusion of
# _HINT_ELEMENTS elements that XLA counts at 4 flops each (the replica id added to an iota, then
# three more elementwise ops: well under a microsecond). XLA merges the identical hints of a
# program's calls into one, so a program of up to 4 * _HINT_ELEMENTS - 1000 calls (~790 000
# leaves) stays above the threshold.
_HINT_ELEMENTS = 1024
_ASYNC_ELEMENTS = 1 << 16


def _guard(ctx, cost_hint: bool):
    """The guard operand of a call (its aval and value): the cost hint above on the CPU for a call of
    at least _ASYNC_ELEMENTS stream elements, a one-element constant otherwise."""
    elements = sum(int(np.prod(a.shape)) for a in ctx.avals_in[1:])  # operand 0: the coefficients
    if not (cost_hint and elements >= _ASYNC_ELEMENTS):
        return ShapedArray((1,), np.float32), mlir.ir_constant(np.zeros((1,), np.float32))
    f32 = ir.F32Type.get()
    vector = ir.RankedTensorType.get([_HINT_ELEMENTS], f32)
    replica = stablehlo.convert(ir.RankedTensorType.get([], f32), stablehlo.replica_id())
    x = stablehlo.add(stablehlo.broadcast_in_dim(vector, replica, mlir.dense_int_array([])), stablehlo.iota(vector, mlir.i64_attr(0)))
    value = stablehlo.multiply(stablehlo.add(stablehlo.multiply(x, x), x), x)  # its values are never read
    return ShapedArray((_HINT_ELEMENTS,), np.float32), value


def _lower(name: str, ctx, operands, alias_map: dict | None, attrs: dict, guarded: bool, layouts: dict, cost_hint: bool):
    """The custom call, with the compile-time guard of a ``guarded`` target.

    Why the guard: for every instruction that feeds an in-place custom call, XLA's fusion pass
    (``InstructionFusion::ShouldFuseInPlaceOp``) walks every (aliased operand, result) pair and, per
    pair, every operand, looking for an operand that repeats the aliased one, and forbids the fusion
    if it finds one. A fused step over n leaves has ~n producers (the gradients), ~3n pairs and ~4n
    operands: ~12 n^3 steps, minutes of compile time for 2000 leaves. Repeating the operand of the
    first pair makes every such walk stop at the first pair, with the answer it would have reached
    anyway (a custom call is never fused). The guard (see :func:`_guard`: a small array) is passed
    twice, as operands 0 and 1 before the coefficients, the first written over by an extra result 0
    that the kernel never touches and JAX never sees; XLA copies those few bytes so the two stay
    distinct."""
    if not guarded:
        return jax.ffi.ffi_lowering(name, operand_output_aliases=alias_map, **layouts)(ctx, *operands, **attrs)
    guard_aval, guard = _guard(ctx, cost_hint)
    guarded_aliases = {0: 0}  # first: XLA walks the pairs in this order
    guarded_aliases.update({k + 2: j + 1 for k, j in (alias_map or {}).items()})
    ctx = ctx.replace(avals_in=[guard_aval, guard_aval, *ctx.avals_in], avals_out=[guard_aval, *ctx.avals_out])
    results = jax.ffi.ffi_lowering(name, operand_output_aliases=guarded_aliases, **layouts)(ctx, guard, guard, *operands, **attrs)
    return list(results)[1:]
