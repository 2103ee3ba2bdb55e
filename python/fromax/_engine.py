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
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fromax import reference
from fromax._primitives import axpby_p, fromage_p, sums_p
from fromax.reference import acc_dtype

Array = jax.Array


def groups(leaves: Sequence[Array]) -> list[tuple[np.dtype, list[int]]]:
    """Indices of the leaves in each accumulator group, f32 group first (at most two groups)."""
    by_acc: dict[np.dtype, list[int]] = {}
    for i, leaf in enumerate(leaves):
        by_acc.setdefault(acc_dtype(leaf.dtype), []).append(i)
    return sorted(by_acc.items(), key=lambda kv: kv[0].itemsize)


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


# ---- fromax_sums: the reduce phase --------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _sums_call(segments: int, with_b: bool):
    @jax.custom_batching.custom_vmap
    def call(a: list[Array], b: list[Array]) -> Array:
        return sums_p.bind(*a, *b, segments=segments, streams=2 if with_b else 1)[0]

    @call.def_vmap
    def rule(size, in_batched, a, b):
        a = [_lead_batch(x, bt, size) for x, bt in zip(a, in_batched[0])]
        b = [_lead_batch(x, bt, size) for x, bt in zip(b, in_batched[1])]
        out = _sums_call(segments * size, with_b)(a, b)
        return out.reshape(size, segments, *out.shape[1:]), True

    return call


def sums(a: Sequence[Array], b: Sequence[Array] | None = None) -> Array:
    """Kernel version of :func:`fromax.reference.sums` for one accumulator group: (n, 1) or (n, 3)."""
    return _sums_call(1, b is not None)(list(a), list(b or []))[0]


# ---- fromax_axpby: the update phase -------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _axpby_call(segments: int, in_place: bool):
    @jax.custom_batching.custom_vmap
    def call(coeffs: Array, x: list[Array], y: list[Array]) -> list[Array]:
        return axpby_p.bind(coeffs, *x, *y, segments=segments, _in_place=in_place)

    @call.def_vmap
    def rule(size, in_batched, coeffs, x, y):
        coeffs = _lead_batch(coeffs, in_batched[0], size)
        coeffs = coeffs.reshape(size * segments, *coeffs.shape[2:])
        x = [_lead_batch(v, bt, size) for v, bt in zip(x, in_batched[1])]
        y = [_lead_batch(v, bt, size) for v, bt in zip(y, in_batched[2])]
        return _axpby_call(segments * size, in_place)(coeffs, x, y), [True] * len(x)

    return call


def axpby(coeffs: Array, x: Sequence[Array], y: Sequence[Array], *, in_place: bool) -> list[Array]:
    """Kernel version of :func:`fromax.reference.axpby`; ``in_place`` aliases each output to x_i."""
    return list(_axpby_call(1, in_place)(coeffs[None], list(x), list(y)))


# ---- fromax_fromage: the fused step -------------------------------------------------------------
def _fromage_two_phase(lr, p_bound, init_norms, w, g, *, delta: bool) -> list[Array]:
    s = sums(w, g)
    a, b = reference.fromage_coefficients(s[:, 0], s[:, 1], s[:, 2], lr, p_bound, init_norms, delta)
    return axpby(jnp.stack([a, b], axis=-1), w, g, in_place=not delta)


@functools.lru_cache(maxsize=None)
def _fromage_call(delta: bool):
    @jax.custom_batching.custom_vmap
    def call(lr: Array, p_bound: Array, init_norms: Array, w: list[Array], g: list[Array]) -> list[Array]:
        # The optax contract (delta) returns W_new - W in fresh buffers; the fused step writes W_new
        # over W (aliased), so a donated step runs in place.
        return fromage_p.bind(lr, p_bound, init_norms, *w, *g, delta=int(delta))

    @call.def_vmap
    def rule(size, in_batched, lr, p_bound, init_norms, w, g):
        in_axes = jax.tree.map(lambda bt: 0 if bt else None, list(in_batched))
        two_phase = functools.partial(_fromage_two_phase, delta=delta)
        out = jax.vmap(two_phase, in_axes=tuple(in_axes), axis_size=size)(lr, p_bound, init_norms, w, g)
        return out, [True] * len(w)

    return call


def fromage(lr: Array, p_bound: Array, init_norms: Array, w: Sequence[Array], g: Sequence[Array], *, delta: bool) -> list[Array]:
    """Fused Fromage step for one accumulator group (``init_norms`` all zero: no p_bound)."""
    return list(_fromage_call(delta)(lr, p_bound, init_norms, list(w), list(g)))
