"""The elementwise engine as seen from JAX: one FFI call per functor phase for a whole pytree.

An optimizer step is a reduce phase (per-tensor sums of a few elementwise terms, in one read of the
streams they need) and an update phase (every output stream written in one pass), each a functor of
:mod:`fromax._functors` run over every leaf in one call per accumulator group (f32 accumulation for
f32/bf16/f16 leaves, f64 for f64). What couples the two phases (trust ratios, global step sizes) is a
few scalars per tensor computed in JAX from the sums and passed to the update as a coefficient row
per tensor, together with the hyperparameters: everything the kernels read is data, so nothing
recompiles when a hyperparameter changes.

Every call inherits, like Fromage's, the engine's sharding (:mod:`fromax._sharding`: shards reduce
locally and their sums are all-reduced; updates stay local), ``jax.vmap`` (a batch of models is one
call with ``segments`` multiplied) and ``jax.grad``/``jax.jvp`` (the JVP of the reference math).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fromax._engine import _differentiable, _lead_batch, groups
from fromax._functors import FUNCTORS, Functor
from fromax._primitives import make_primitive
from fromax._sharding import EngineCall, RowReduce, run, varying_axes
from fromax.reference import acc_dtype

Array = jax.Array
Streams = Sequence[Sequence[Array]]

# The `delta` of an update: False (the fused step: new params, every result in place), True (the
# optax contract: an increment, fresh buffers) or STATE_IN_PLACE (an increment, with the state
# results written over their state streams: a base transformation inside a fused, donated step).
STATE_IN_PLACE = 2


# ---- primitives: one per functor, named after its FFI target ---------------------------------------
@functools.lru_cache(maxsize=None)
def primitive(functor: Functor):
    if functor.is_reduce:

        def avals(coeffs, *tensors, segments: int):
            n = len(tensors) // functor.n_in
            replicated = NamedSharding(tensors[0].sharding.mesh, PartitionSpec())
            shape = (segments, n, functor.n_sums)
            return [tensors[0].update(shape=shape, dtype=coeffs.dtype, weak_type=False, sharding=replicated)]

        return make_primitive(functor.target, avals, lambda n_ops, n_res, **params: None)

    def avals(coeffs, *tensors, segments: int, delta: int, _state_in_place: int):
        n = len(tensors) // functor.n_in
        return [tensors[r * n + i].update(weak_type=False) for r in functor.replaces for i in range(n)]

    def aliases(n_ops, n_res, *, delta: int, _state_in_place: int, **params):
        # The fused step (delta=0) writes every result over the stream it replaces, so a donated
        # step runs in place; the optax contract returns fresh buffers (aliasing undonated inputs
        # would make XLA copy them first), except under STATE_IN_PLACE: an increment, but the
        # state results over their (donated) state streams.
        n = n_res // functor.n_out
        first = 0 if not delta else 1 if _state_in_place else functor.n_out
        return {1 + r * n + i: j * n + i for j, r in enumerate(functor.replaces) if j >= first for i in range(n)} or None

    return make_primitive(functor.target, avals, aliases, guarded=True)


# ---- per-device bodies (see _sharding.EngineCall) -------------------------------------------------
def _reduce_local(reduce: RowReduce, coeffs: Array, *tensors: Array, segments: int, functor: Functor) -> list[Array]:
    return [reduce(primitive(functor).bind(coeffs, *tensors, segments=segments)[0])]


def _update_local(reduce: RowReduce, coeffs: Array, *tensors: Array, segments: int, functor: Functor, delta: bool) -> list[Array]:
    del reduce  # elementwise: shards update on their own
    in_place = int(delta == STATE_IN_PLACE)
    return primitive(functor).bind(coeffs, *tensors, segments=segments, delta=int(bool(delta)), _state_in_place=in_place)


@functools.lru_cache(maxsize=None)
def _call(functor: Functor, segments: int, delta: bool):
    """``call(coeffs (segments, n, C), streams) -> sums (segments, n, R) | n_out lists of n tensors``."""
    if functor.is_reduce:
        engine_call = EngineCall(_reduce_local, (("functor", functor),), 1, functor.n_in, True, segments)
    else:
        engine_call = EngineCall(_update_local, (("functor", functor), ("delta", delta)), 1, functor.n_in, False, segments, functor.n_out)

    @jax.custom_batching.custom_vmap
    def call(coeffs: Array, streams: list[list[Array]]):
        out = run(engine_call, coeffs, *[x for s in streams for x in s])
        if functor.is_reduce:
            return out[0]
        n = len(streams[0])
        return [list(out[j * n : (j + 1) * n]) for j in range(functor.n_out)]

    @call.def_vmap
    def rule(size, in_batched, coeffs, streams):
        coeffs = _lead_batch(coeffs, in_batched[0], size)
        coeffs = coeffs.reshape(size * segments, *coeffs.shape[2:])
        streams = [[_lead_batch(x, bt, size) for x, bt in zip(s, bs)] for s, bs in zip(streams, in_batched[1])]
        out = _call(functor, segments * size, delta)(coeffs, streams)
        if functor.is_reduce:
            return out.reshape(size, segments, *out.shape[1:]), True
        return out, [[True] * len(streams[0]) for _ in range(functor.n_out)]

    return call


# ---- the kernels and their pure-JAX reference, for one accumulator group ---------------------------
@functools.lru_cache(maxsize=None)
def _kernel(functor: Functor, delta: bool):
    if functor.is_reduce:
        return lambda coeffs, streams: _call(functor, 1, delta)(coeffs[None], streams)[0]
    return lambda coeffs, streams: _call(functor, 1, delta)(coeffs[None], streams)


def _leaf_math(functor: Functor, coeffs: Array, streams: Streams, i: int) -> list[Array]:
    acc = coeffs.dtype
    c = [coeffs[i, k] for k in range(functor.n_coeffs)]
    return functor.math(c, [s[i].astype(acc) for s in streams])


@functools.lru_cache(maxsize=None)
def _reference(functor: Functor, delta: bool):
    """The functor's math per leaf in JAX: the ``backend="xla"`` path, the oracle, the JVP rule."""

    def reduce(coeffs: Array, streams: Streams) -> Array:
        rows = []
        for i in range(len(streams[0])):
            row = jnp.stack([jnp.sum(term) for term in _leaf_math(functor, coeffs, streams, i)])
            # Inside shard_map a block varying over manual axes is a shard: its sums are partial.
            split = varying_axes(row)
            rows.append(jax.lax.psum(row, tuple(sorted(split))) if split else row)
        return jnp.stack(rows)

    def update(coeffs: Array, streams: Streams) -> list[list[Array]]:
        out: list[list[Array]] = [[] for _ in functor.replaces]
        for i in range(len(streams[0])):
            results = _leaf_math(functor, coeffs, streams, i)
            if not delta:
                results[0] = results[0] + streams[functor.replaces[0]][i].astype(coeffs.dtype)
            for j, r in enumerate(functor.replaces):
                out[j].append(results[j].astype(streams[r][i].dtype))
        return out

    return reduce if functor.is_reduce else update


# ---- the whole pytree: one call per accumulator group ----------------------------------------------
def coeff_dtype(leaves: Sequence[Array]) -> np.dtype:
    """The dtype per-tensor coefficients are computed in: f64 if any leaf accumulates in f64."""
    return max((acc_dtype(x.dtype) for x in leaves), key=lambda d: d.itemsize, default=np.dtype(np.float32))


def _check(functor: Functor, coeffs: Array, streams: Streams) -> int:
    if len(streams) != functor.n_in:
        raise ValueError(f"fromax: {functor.target} takes {functor.n_in} streams, got {len(streams)}")
    n = len(streams[0])
    if any(len(s) != n for s in streams):
        raise ValueError(f"fromax: {functor.target}: streams have different numbers of leaves")
    if coeffs.shape != (n, functor.n_coeffs):
        raise ValueError(f"fromax: {functor.target}: coefficients have shape {coeffs.shape}, expected {(n, functor.n_coeffs)}")
    return n


def _per_group(functor: Functor, coeffs: Array, streams: Streams, kernels: bool, delta: bool):
    """(indices, result) per accumulator group of stream 0's leaves."""
    fn = _differentiable(_kernel(functor, delta), _reference(functor, delta)) if kernels else _reference(functor, delta)
    n = len(streams[0])
    for acc, idx in groups(streams[0]):
        c = (coeffs if len(idx) == n else coeffs[np.asarray(idx)]).astype(acc)
        sub = [[s[i] for i in idx] for s in streams]
        yield idx, fn(c, sub)


def reduce(name: str, coeffs: Array, streams: Streams, *, kernels: bool) -> Array:
    """Per-tensor sums ``(n, n_sums)`` of functor ``name``'s terms over every leaf (in the dtype of
    ``coeffs``). ``coeffs``: ``(n, n_coeffs)``, one row per leaf; ``streams``: ``n_in`` lists of n."""
    functor = FUNCTORS[name]
    n = _check(functor, coeffs, streams)
    if n == 0:
        return jnp.zeros((0, functor.n_sums), coeffs.dtype)
    parts = list(_per_group(functor, coeffs, streams, kernels, delta=True))
    if len(parts) == 1:
        return parts[0][1].astype(coeffs.dtype)
    out = jnp.zeros((n, functor.n_sums), coeffs.dtype)
    for idx, rows in parts:
        out = out.at[np.asarray(idx)].set(rows.astype(coeffs.dtype))
    return out


def update(name: str, coeffs: Array, streams: Streams, *, kernels: bool, delta: bool | int) -> list[list[Array]]:
    """Functor ``name``'s results for every leaf: ``n_out`` lists of n tensors, result j shaped and
    typed like the stream it replaces. Result 0 is the parameter increment (``delta`` True or
    STATE_IN_PLACE) or the new parameter (``delta=False``: the fused step, written over the
    parameter's buffer)."""
    functor = FUNCTORS[name]
    n = _check(functor, coeffs, streams)
    out: list[list] = [[None] * n for _ in functor.replaces]
    for idx, results in _per_group(functor, coeffs, streams, kernels, delta):
        for j in range(functor.n_out):
            for i, value in zip(idx, results[j], strict=True):
                out[j][i] = value
    return out


def rows(n: int, dtype, *columns) -> Array:
    """A ``(n, len(columns))`` coefficient table: each column a scalar (broadcast to every leaf) or
    an ``(n,)`` per-tensor vector."""
    cols = [jnp.broadcast_to(jnp.asarray(c, dtype), (n,)) for c in columns]
    return jnp.stack(cols, axis=-1) if cols else jnp.zeros((n, 0), dtype)
