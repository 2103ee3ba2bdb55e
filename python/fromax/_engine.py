"""The multi-tensor engine as seen from JAX: a few FFI calls for a whole list of leaves.

Leaves are split into accumulator groups (f32 accumulation for f32/bf16/f16 storage, f64 for f64) and
each group goes through one call per phase, so the number of custom calls in a step is constant in
the number of leaves (at most two groups). Leaves are passed as variadic operands, never
concatenated (a concatenation would cost a full extra pass over the parameters).

``jax.vmap`` (a batch of models): every call is a ``custom_vmap`` whose rule re-issues the *same*
kernel with ``segments`` multiplied by the batch size, the batch axis leading each operand, so a
batch of B models is one batched call, not B calls. The fused Fromage call, whose per-tensor
coefficients are computed inside the kernel from scalar hyperparameters, vmaps into the two-phase
form (batched reduce, coefficient math in JAX, batched update).

Sharded operands (``jax.jit`` with shardings, ``jax.shard_map``): every call goes through
:func:`fromax._sharding.run`, which runs the per-device body (``_*_local`` below) on the shards with
an all-reduce of per-tensor partial sums between the reduce and the update phase.

``jax.grad`` / ``jax.jvp``: every call carries a ``custom_jvp`` whose rule is the JVP of the same
math in :mod:`fromax.reference`.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fromax import reference
from fromax._primitives import axpby_p, fromage_p, sums_p
from fromax._sharding import EngineCall, RowReduce, run, varying_axes
from fromax.reference import acc_dtype

Array = jax.Array


# Leaves per call: a model with more leaves runs one call per LEAVES_PER_CALL of them. XLA's compile
# time grows faster than linearly with the operands of one call, so calls of bounded size keep it
# closer to linear in the leaves: in throwaway measurements the fused AdamW step over 5000 leaves
# compiled in 253 s as one call and 76 s in calls of 128 (optax.adamw: 114 s). A call has a fixed
# cost of a few microseconds: 256 leaves (8 calls for 2000 leaves) cost no measurable time on
# many_small's step.
LEAVES_PER_CALL = 256


def groups(leaves: Sequence[Array]) -> list[tuple[np.dtype, list[int]]]:
    """Indices of the leaves in each call group, f32 accumulation first.

    A group is an accumulator dtype (at most two), and inside ``jax.shard_map`` also the set of
    manual mesh axes the leaves vary over, i.e. are split along (a handful: the model's sharding
    patterns, never one per leaf), so each call all-reduces its partial sums over one set of axes;
    and at most LEAVES_PER_CALL leaves of it.
    """
    by_key: dict[tuple, list[int]] = {}
    for i, leaf in enumerate(leaves):
        by_key.setdefault((acc_dtype(leaf.dtype), tuple(sorted(varying_axes(leaf)))), []).append(i)
    keys = sorted(by_key, key=lambda k: (k[0].itemsize, k[1]))
    return [(key[0], by_key[key][i : i + LEAVES_PER_CALL]) for key in keys for i in range(0, len(by_key[key]), LEAVES_PER_CALL)]


def map_groups(leaves: Sequence[Array], fn) -> list:
    """``fn(acc_dtype, indices)`` -> one result per index, for each accumulator group; all results
    returned in leaf order."""
    out: list = [None] * len(leaves)
    for acc, idx in groups(leaves):
        for i, value in zip(idx, fn(acc, idx), strict=True):
            out[i] = value
    return out


def _lead_batch(x: Array, batched: bool, size: int) -> Array:
    return x if batched else jnp.broadcast_to(x, (size, *x.shape))


# ---- the per-device bodies (see _sharding.EngineCall): kernels, and the all-reduce between them ---
def _sums_local(reduce: RowReduce, *tensors: Array, segments: int, streams: int) -> list[Array]:
    return [reduce(sums_p.bind(*tensors, segments=segments, streams=streams)[0])]


def _axpby_local(reduce: RowReduce, coeffs: Array, *tensors: Array, segments: int, in_place: bool) -> list[Array]:
    del reduce  # elementwise: shards update on their own
    return axpby_p.bind(coeffs, *tensors, segments=segments, _in_place=in_place)


def _fromage_local(reduce: RowReduce, lr, p_bound, init_norms, *tensors: Array, segments: int) -> list[Array]:
    del segments  # 1: under vmap the fused call becomes the two-phase one
    if reduce.trivial:
        # W_new written over W (aliased), so a donated step runs in place. (The kernel's delta=1,
        # W_new - W, is not used: the optax contract updates in XLA, see fromax._family.)
        return fromage_p.bind(lr, p_bound, init_norms, *tensors, delta=0)
    # Split tensors: the norms need every shard, so reduce, all-reduce, then update.
    s = reduce(sums_p.bind(*tensors, segments=1, streams=2)[0])[0]
    coeffs = reference.fromage_coefficient_rows(s, lr, p_bound, init_norms, False)
    return axpby_p.bind(coeffs[None], *tensors, segments=1, _in_place=True)


# ---- fromax_sums: the reduce phase --------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _sums_call(segments: int, with_b: bool):
    streams = 2 if with_b else 1
    engine_call = EngineCall(_sums_local, (("streams", streams),), 0, streams, True, segments)

    @jax.custom_batching.custom_vmap
    def call(a: list[Array], b: list[Array]) -> Array:
        return run(engine_call, *a, *b)[0]

    @call.def_vmap
    def rule(size, in_batched, a, b):
        a = [_lead_batch(x, bt, size) for x, bt in zip(a, in_batched[0])]
        b = [_lead_batch(x, bt, size) for x, bt in zip(b, in_batched[1])]
        out = _sums_call(segments * size, with_b)(a, b)
        return out.reshape(size, segments, *out.shape[1:]), True

    return call


def _sums_kernel(a: list[Array], b: list[Array]) -> Array:
    return _sums_call(1, bool(b))(a, b)[0]


def _sums_reference(a: list[Array], b: list[Array]) -> Array:
    return reference.sums(a, b or None)


def sums(a: Sequence[Array], b: Sequence[Array] | None = None) -> Array:
    """Kernel version of :func:`fromax.reference.sums` for one accumulator group: (n, 1) or (n, 3)."""
    return _differentiable(_sums_kernel, _sums_reference)(list(a), list(b or []))


# ---- fromax_axpby: the update phase -------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _axpby_call(segments: int, in_place: bool):
    engine_call = EngineCall(_axpby_local, (("in_place", in_place),), 1, 2, False, segments)

    @jax.custom_batching.custom_vmap
    def call(coeffs: Array, x: list[Array], y: list[Array]) -> list[Array]:
        return run(engine_call, coeffs, *x, *y)

    @call.def_vmap
    def rule(size, in_batched, coeffs, x, y):
        coeffs = _lead_batch(coeffs, in_batched[0], size)
        coeffs = coeffs.reshape(size * segments, *coeffs.shape[2:])
        x = [_lead_batch(v, bt, size) for v, bt in zip(x, in_batched[1])]
        y = [_lead_batch(v, bt, size) for v, bt in zip(y, in_batched[2])]
        return _axpby_call(segments * size, in_place)(coeffs, x, y), [True] * len(x)

    return call


@functools.lru_cache(maxsize=None)
def _axpby_kernel(in_place: bool):
    return lambda coeffs, x, y: list(_axpby_call(1, in_place)(coeffs[None], x, y))


def axpby(coeffs: Array, x: Sequence[Array], y: Sequence[Array], *, in_place: bool) -> list[Array]:
    """Kernel version of :func:`fromax.reference.axpby`; ``in_place`` aliases each output to x_i."""
    return _differentiable(_axpby_kernel(in_place), reference.axpby)(coeffs, list(x), list(y))


# ---- fromax_fromage: the fused step -------------------------------------------------------------
def _fromage_two_phase(lr, p_bound, init_norms, w, g) -> list[Array]:
    s = sums(w, g)
    return axpby(reference.fromage_coefficient_rows(s, lr, p_bound, init_norms, False), w, g, in_place=True)


@functools.lru_cache(maxsize=None)
def _fromage_call():
    engine_call = EngineCall(_fromage_local, (), 3, 2, False)

    @jax.custom_batching.custom_vmap
    def call(lr: Array, p_bound: Array, init_norms: Array, w: list[Array], g: list[Array]) -> list[Array]:
        return run(engine_call, lr, p_bound, init_norms, *w, *g)

    @call.def_vmap
    def rule(size, in_batched, lr, p_bound, init_norms, w, g):
        in_axes = jax.tree.map(lambda bt: 0 if bt else None, list(in_batched))
        out = jax.vmap(_fromage_two_phase, in_axes=tuple(in_axes), axis_size=size)(lr, p_bound, init_norms, w, g)
        return out, [True] * len(w)

    return call


def _fromage_kernel(lr, p_bound, init_norms, w, g) -> list[Array]:
    return list(_fromage_call()(lr, p_bound, init_norms, w, g))


def _fromage_reference(lr, p_bound, init_norms, w, g) -> list[Array]:
    # init_norms all zero means "no p_bound" for the kernel; the same holds in the reference math.
    return reference.fromage(lr, p_bound, init_norms, w, g, False)


def fromage(lr: Array, p_bound: Array, init_norms: Array, w: Sequence[Array], g: Sequence[Array]) -> list[Array]:
    """Fused Fromage step for one accumulator group, new params written over the old (``init_norms``
    all zero: no p_bound)."""
    return _differentiable(_fromage_kernel, _fromage_reference)(lr, p_bound, init_norms, list(w), list(g))


# ---- jax.grad / jax.jvp: the kernels' derivatives are the reference math's ----------------------
@functools.lru_cache(maxsize=None)
def _differentiable(kernel: Callable, math: Callable) -> Callable:
    """``kernel`` with the derivatives of ``math`` (the same function in pure JAX): under
    ``jax.jvp``/``jax.grad`` (e.g. hypergradients through an optimizer step) the primal and tangents
    come from the reference; without differentiation the kernel runs."""
    fn = jax.custom_jvp(kernel)
    fn.defjvp(lambda primals, tangents: jax.jvp(math, primals, tangents))
    # Eager (un-jitted) calls run one cached compiled program instead of re-tracing the custom_jvp,
    # custom_vmap and custom_partitioning layers on every call.
    compiled = jax.jit(fn)

    def call(*args):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
            return fn(*args)
        return compiled(*args)

    call.compiled = compiled  # type: ignore[attr-defined]  # for tests: its cache size counts compilations
    return call
