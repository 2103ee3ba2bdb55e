"""The elementwise engine as seen from JAX: one FFI call per functor phase for a whole pytree.

An optimizer step is a reduce phase (per-tensor sums of a few elementwise terms, in one read of the
streams they need) and an update phase (every output stream written in one pass), each a functor of
:mod:`fromax._functors` run over every leaf in one call per accumulator group (f32 accumulation for
f32/bf16/f16 leaves, f64 for f64). What couples the two phases (trust ratios, global step sizes) is a
few scalars per tensor computed in JAX from the sums and passed to the update as a coefficient row
per tensor, together with the hyperparameters: everything the kernels read is data, so nothing
recompiles when a hyperparameter changes. Where the coupling is per tensor (Fromage, LARS, LAMB,
NovoGrad), the fused step is one call of a *per-tensor fused* functor instead: the kernel turns each
tensor's sums into its row itself (the functor's ``finish``, the same math in C++) between reducing
and updating it, and returns the sums (:func:`fused`).

Every call inherits the engine's sharding (:mod:`fromax._sharding`: shards reduce locally and their
sums are all-reduced; updates stay local; a fused call on split tensors becomes reduce, all-reduce,
finish, update), ``jax.vmap`` (a batch of models is one call with ``segments`` multiplied) and
``jax.grad``/``jax.jvp`` (the JVP of the reference math).

The optax contract (``tx.update``, then ``optax.apply_updates``): the reduce phase runs on the
kernels, the update phase is the functor's math in JAX, compiled by XLA like optax's own step. An FFI
call is where XLA stops fusing, and its results live in buffers XLA cannot choose, so an update
kernel costs more there than the XLA loops it replaces: the increment it returns is added to the
params by a separate pass (XLA computes it inside the loop that adds it), its result buffers are
fresh memory touched for the first time on every call (page faults), and its new state cannot be
written over donated state (a result written over an operand is forced, so XLA would copy every
undonated operand first), so XLA copies each state result into its donated buffer instead. In a
training loop XLA also fuses the gradient's own computation into that loop. :func:`fromax.step` is
the path with no increment at all: the update kernel writes params and state in place.

In the contract XLA writes each result in a loop of its own, over the donated buffer it replaces,
and copies a tensor first wherever one loop reads what another overwrites in no order it can see.
Two things keep a donated contract step (and any ``backend="xla"`` step) free of copies: the
math's XLA form (:func:`fromax._functors.xla_form`: the params' loop reads new state, never old)
and ``after=`` (:func:`_state_after`: a reduce that read the state runs before it is overwritten).
"""

from __future__ import annotations

import contextlib
import enum
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fromax import _prologue
from fromax._functors import FUNCTORS, Functor, Named, xla_form
from fromax._primitives import make_primitive
from fromax._l2 import hypot, l2_norms, tensor_sums
from fromax._sharding import EngineCall, RowReduce, run, varying_axes
from fromax.reference import acc_dtype

Array = jax.Array
Streams = Sequence[Sequence[Array]]


class Output(enum.IntEnum):
    """What an update writes: the ``delta`` of every optimizer's ``apply``, of :func:`update` and
    (as 0 or 1) of the FFI targets. One vocabulary for the whole engine."""

    NEW = 0  # the fused step: new params (and state), every result written over its buffer
    INCREMENT = 1  # the optax contract: the params' increment and the new state, computed by XLA
    # An increment in a fresh buffer with the state results written over their state streams, on
    # the kernels: a base transformation inside a wrapper's fused, donated step.
    INCREMENT_STATE_IN_PLACE = 2



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

    # A fused functor's results are its tensors' sums, then the update's tensors.
    sums_first = 1 if functor.is_fused else 0

    def avals(coeffs, *tensors, segments: int, delta: int):
        n = len(tensors) // functor.n_in
        out = [tensors[r * n + i].update(weak_type=False) for r in functor.replaces for i in range(n)]
        if sums_first:
            replicated = NamedSharding(tensors[0].sharding.mesh, PartitionSpec())
            shape = (segments, n, functor.parts[0].n_sums)
            out.insert(0, tensors[0].update(shape=shape, dtype=coeffs.dtype, weak_type=False, sharding=replicated))
        return out

    def aliases(n_ops, n_res, *, delta: int, **params):
        # The fused step (delta=0) writes every result over the stream it replaces, so a donated
        # step runs in place; an increment (delta=1: INCREMENT_STATE_IN_PLACE, a base inside a wrapper's
        # fused step) goes to a fresh buffer, the state results still over their state streams.
        n = (n_res - sums_first) // functor.n_out
        first = 1 if delta else 0
        return {1 + r * n + i: sums_first + j * n + i for j, r in enumerate(functor.replaces) if j >= first for i in range(n)} or None

    return make_primitive(functor.target, avals, aliases, guarded=True)


# ---- per-device bodies (see _sharding.EngineCall) -------------------------------------------------
def _reduce_local(reduce: RowReduce, coeffs: Array, *tensors: Array, segments: int, functor: Functor) -> list[Array]:
    return [reduce(primitive(functor).bind(coeffs, *tensors, segments=segments)[0], functor.norms)]


def _update_local(reduce: RowReduce, coeffs: Array, *tensors: Array, segments: int, functor: Functor, delta: Output) -> list[Array]:
    if not functor.is_fused or reduce.trivial:  # an update: shards update on their own
        return primitive(functor).bind(coeffs, *tensors, segments=segments, delta=int(bool(delta)))
    # A fused functor on split tensors: the sums need every shard, so reduce, all-reduce, finish
    # (in JAX, the same math), then update.
    r, u = functor.parts
    n = len(tensors) // functor.n_in
    sums = reduce(primitive(r).bind(coeffs[..., : r.n_coeffs], *tensors[: r.n_in * n], segments=segments)[0], r.norms)
    rows = _finish(functor, [coeffs[..., k] for k in range(functor.n_coeffs)], sums)
    return [sums, *primitive(u).bind(rows, *tensors, segments=segments, delta=int(bool(delta)))]


def _finish(functor: Functor, columns: list, sums: Array) -> Array:
    """A fused functor's update rows ``(..., n, C)`` from its coefficient columns and its reduce's
    sums ``(..., n, R)``."""
    cols = functor.apply(columns, [sums[..., r] for r in range(functor.parts[0].n_sums)])
    shape = sums.shape[:-1]
    return jnp.stack([jnp.broadcast_to(jnp.asarray(c, sums.dtype), shape) for c in cols], axis=-1)


@functools.lru_cache(maxsize=None)
def _call(functor: Functor, segments: int, delta: Output):
    """``call(coeffs (segments, n, C), streams) -> sums (segments, n, R) | n_out lists of n tensors
    | (sums, lists)`` (reduce, update, fused)."""
    if functor.is_reduce:
        engine_call = EngineCall(_reduce_local, (("functor", functor),), 1, functor.n_in, True, segments)
    else:
        engine_call = EngineCall(_update_local, (("functor", functor), ("delta", delta)), 1, functor.n_in, False, segments, functor.n_out,
                                 sums_first=functor.is_fused)

    @jax.custom_batching.custom_vmap
    def call(coeffs: Array, streams: list[list[Array]]):
        out = run(engine_call, coeffs, *[x for s in streams for x in s])
        if functor.is_reduce:
            return out[0]
        n = len(streams[0])
        tensors = out[1:] if functor.is_fused else out
        lists = [list(tensors[j * n : (j + 1) * n]) for j in range(functor.n_out)]
        return (out[0], lists) if functor.is_fused else lists

    @call.def_vmap
    def rule(size, in_batched, coeffs, streams):
        coeffs = _lead_batch(coeffs, in_batched[0], size)
        coeffs = coeffs.reshape(size * segments, *coeffs.shape[2:])
        streams = [[_lead_batch(x, bt, size) for x, bt in zip(s, bs)] for s, bs in zip(streams, in_batched[1])]
        out = _call(functor, segments * size, delta)(coeffs, streams)
        unbatch = lambda sums: sums.reshape(size, segments, *sums.shape[1:])
        if functor.is_reduce:
            return unbatch(out), True
        batched = [[True] * len(streams[0]) for _ in range(functor.n_out)]
        if functor.is_fused:
            return (unbatch(out[0]), out[1]), (True, batched)
        return out, batched

    return call


# ---- the kernels and their pure-JAX reference, for one accumulator group ---------------------------
@functools.lru_cache(maxsize=None)
def _kernel(functor: Functor, delta: Output):
    if functor.is_reduce:
        return lambda coeffs, streams: _call(functor, 1, delta)(coeffs[None], streams)[0]
    if functor.is_fused:

        def fused(coeffs, streams):
            sums, lists = _call(functor, 1, delta)(coeffs[None], streams)
            return sums[0], lists

        return fused
    return lambda coeffs, streams: _call(functor, 1, delta)(coeffs[None], streams)


def _leaf_math(functor: Functor, coeffs: "Array | Coefficients", streams: Streams, i: int) -> list[Array]:
    acc = coeffs.dtype
    c = coeffs.leaf(i) if isinstance(coeffs, Coefficients) else [coeffs[i, k] for k in range(functor.n_coeffs)]
    return functor.apply(c, [s[i].astype(acc) for s in streams])


@functools.lru_cache(maxsize=None)
def _reference(functor: Functor, delta: Output):
    """The functor's math per leaf in JAX: the ``backend="xla"`` path, the oracle, the JVP rule."""

    def reduce(coeffs: Array, streams: Streams) -> Array:
        n = len(streams[0])
        terms = [_leaf_math(functor, coeffs, streams, i) for i in range(n)]
        # Column by column over all leaves (l2_norms and tensor_sums batch the small ones): per leaf,
        # a norm's max, scale and sums would make XLA compile for minutes at thousands of leaves.
        columns = [
            l2_norms([jnp.broadcast_to(t[k], s.shape) for t, s in zip(terms, streams[0])]) if norm else tensor_sums([t[k] for t in terms])
            for k, norm in enumerate(functor.norms)
        ]
        table = jnp.stack(columns, axis=1)
        # Inside shard_map a leaf varying over manual axes is a shard: its sums are partial.
        split = tuple(tuple(sorted(frozenset().union(*map(varying_axes, t)))) for t in terms)
        return RowReduce(split)(table[None], functor.norms)[0] if any(split) else table

    def update(coeffs: Array, streams: Streams) -> list[list[Array]]:
        out: list[list[Array]] = [[] for _ in functor.replaces]
        for i in range(len(streams[0])):
            results = _leaf_math(functor, coeffs, streams, i)
            if not delta:
                results[0] = results[0] + streams[functor.replaces[0]][i].astype(coeffs.dtype)
            for j, r in enumerate(functor.replaces):
                out[j].append(results[j].astype(streams[r][i].dtype))
        return out

    def fused(coeffs: "Array | Coefficients", streams: Streams) -> tuple[Array, list[list[Array]]]:
        r, u = functor.parts
        n, acc = len(streams[0]), coeffs.dtype
        columns = coeffs.columns if isinstance(coeffs, Coefficients) else [coeffs[:, k] for k in range(functor.n_coeffs)]
        reduce_rows = Coefficients(n, acc, dict(zip(r.columns, columns[: r.n_coeffs])))
        sums = _reference(r, True)(reduce_rows, streams[: r.n_in])
        rows = functor.apply(columns, [sums[:, k] for k in range(r.n_sums)])
        return sums, _reference(u, delta)(Coefficients(n, acc, dict(zip(u.columns, rows))), streams)

    return reduce if functor.is_reduce else fused if functor.is_fused else update


# ---- the whole pytree: one call per accumulator group ----------------------------------------------
def coeff_dtype(leaves: Sequence[Array]) -> np.dtype:
    """The dtype per-tensor coefficients are computed in: f64 if any leaf accumulates in f64."""
    return max((acc_dtype(x.dtype) for x in leaves), key=lambda d: d.itemsize, default=np.dtype(np.float32))


def _check(functor: Functor, coeffs: Coefficients, streams: Streams) -> int:
    if len(streams) != functor.n_in:
        raise ValueError(f"fromax: {functor.target} takes {functor.n_in} streams, got {len(streams)}")
    n = len(streams[0])
    if any(len(s) != n for s in streams):
        raise ValueError(f"fromax: {functor.target}: streams have different numbers of leaves")
    if coeffs.names != functor.columns:
        raise ValueError(f"fromax: {functor.target} takes the columns {functor.columns}, got {coeffs.names}")
    if coeffs.n != n:
        raise ValueError(f"fromax: {functor.target}: coefficient rows for {coeffs.n} leaves, streams of {n}")
    return n


def _per_group(functor: Functor, coeffs: Coefficients, streams: Streams, kernels: bool, delta: Output):
    """(indices, result) per accumulator group of stream 0's leaves: the kernels read the
    coefficient table, the JAX math its columns."""
    kernel = _differentiable(_kernel(functor, delta), _reference(functor, delta))
    for acc, idx in groups(streams[0]):
        sub = [[s[i] for i in idx] for s in streams]
        if kernels:
            yield idx, kernel(coeffs.table(idx, acc), sub)
        else:
            yield idx, _reference(functor, delta)(coeffs.subset(idx, acc), sub)


def _folded(name: str, coeffs: Coefficients, streams: Streams, kernels: bool) -> tuple[str, Coefficients]:
    """Inside a fused step with a folded gradient prologue (fromax._prologue), functor ``name``'s
    ``<name>_pre`` twin and its rows with the prologue's coefficients appended; else unchanged. The
    step's first call resolves the prologue's global-norm clips with a ``grad_norm_pre`` reduction
    of its own gradient and parameter streams (0 and 1)."""
    folding = _prologue.active()
    if folding is None:
        return name, coeffs
    if f"{name}_pre" not in FUNCTORS:
        raise ValueError(f"fromax: {FUNCTORS[name].target} cannot fold a gradient prologue")

    def global_norm(affine: _prologue.Affine) -> Array:
        scale = affine.scale_only()
        if scale is not None:  # |s g| = |s| |g|: the gradient alone is read
            return jnp.abs(scale) * hypot(_reduce(FUNCTORS["norm"], rows("norm", coeffs.n, coeffs.dtype), [list(streams[0])], kernels)[:, 0])
        prologue = rows("grad_norm_pre", coeffs.n, coeffs.dtype, **affine.columns())
        return hypot(_reduce(FUNCTORS["grad_norm_pre"], prologue, list(streams[:2]), kernels)[:, 0])

    affine = folding.affine(global_norm)
    return f"{name}_pre", rows(f"{name}_pre", coeffs.n, coeffs.dtype, **coeffs.named(), **affine.columns())


def reduce(name: str, coeffs: Coefficients, streams: Streams, *, kernels: bool, fold: bool = True) -> Array:
    """Per-tensor sums ``(n, n_sums)`` of functor ``name``'s terms over every leaf (in the dtype of
    ``coeffs``). ``coeffs``: ``(n, n_coeffs)``, one row per leaf; ``streams``: ``n_in`` lists of n.
    ``fold=False``: never fold an active gradient prologue (the caller folds it itself)."""
    if fold:
        name, coeffs = _folded(name, coeffs, streams, kernels)
    return _reduce(FUNCTORS[name], coeffs, streams, kernels)


def _reduce(functor: Functor, coeffs: Coefficients, streams: Streams, kernels: bool) -> Array:
    n = _check(functor, coeffs, streams)
    if n == 0:
        return jnp.zeros((0, functor.n_sums), coeffs.dtype)
    return _gather_sums(list(_per_group(functor, coeffs, streams, kernels, delta=Output.INCREMENT)), n, functor.n_sums, coeffs.dtype)


def _gather_sums(parts: list, n: int, n_sums: int, dtype) -> Array:
    """The ``(idx, sums)`` of each accumulator group as one ``(n, n_sums)`` array in ``dtype``."""
    if len(parts) == 1:
        return parts[0][1].astype(dtype)
    out = jnp.zeros((n, n_sums), dtype)
    for idx, rows in parts:
        out = out.at[np.asarray(idx)].set(rows.astype(dtype))
    return out


def _gather_tensors(parts, n: int, n_out: int) -> list[list[Array]]:
    """The ``(idx, results)`` of each accumulator group as ``n_out`` lists of n tensors, in leaf order."""
    out: list[list] = [[None] * n for _ in range(n_out)]
    for idx, results in parts:
        for j in range(n_out):
            for i, value in zip(idx, results[j], strict=True):
                out[j][i] = value
    return out


def update(name: str, coeffs: Coefficients, streams: Streams, *, kernels: bool, delta: Output, after: Array | None = None,
           fold: bool = True) -> list[list[Array]]:
    """Functor ``name``'s results for every leaf: ``n_out`` lists of n tensors, result j shaped and
    typed like the stream it replaces. Result 0 is the parameter increment (``delta`` an
    ``Output.INCREMENT*``) or the new parameter (``Output.NEW``: the fused step, written over the
    parameter's buffer). ``after``: the sums of a reduce that read state streams this update
    overwrites (see :func:`_state_after`). ``fold``: as for :func:`reduce`."""
    if fold:
        name, coeffs = _folded(name, coeffs, streams, kernels)
    functor = FUNCTORS[name]
    n = _check(functor, coeffs, streams)
    # The optax contract's update phase is XLA's own (see the module docstring).
    kernels = kernels and delta != Output.INCREMENT
    if not kernels and after is not None:
        streams = _state_after(functor, after, streams)
    with contextlib.nullcontext() if kernels else xla_form():
        return _gather_tensors(_per_group(functor, coeffs, streams, kernels, delta), n, functor.n_out)


def fuses(kernels: bool, delta: Output) -> bool:
    """Whether an optimizer with a per-tensor fused functor runs its step as that one call: the
    kernels' fused step (``Output.NEW``) with no gradient prologue folded in (a folded prologue
    runs the reduce and update functors' ``_pre`` twins). Everywhere else (the optax contract,
    ``backend="xla"``, a wrapper's base) the step is its reduce and its update, which XLA can
    schedule without copies (see :func:`update`)."""
    return kernels and delta == Output.NEW and _prologue.active() is None


def fused(name: str, coeffs: Coefficients, streams: Streams, *, kernels: bool) -> tuple[Array, list[list[Array]]]:
    """The fused step of per-tensor fused functor ``name`` (reduce, finish and update of each tensor
    in one call per group): the per-tensor sums ``(n, n_sums)`` of its reduce (in the dtype of
    ``coeffs``) and ``n_out`` lists of n tensors, the new parameters and state written over their
    buffers. Under ``jax.vmap`` still one call (``segments``); on split tensors (sharded) reduce,
    all-reduce, finish, update."""
    functor = FUNCTORS[name]
    assert functor.is_fused, name
    n = _check(functor, coeffs, streams)
    parts = list(_per_group(functor, coeffs, streams, kernels, Output.NEW))
    sums = _gather_sums([(idx, group[0]) for idx, group in parts], n, functor.parts[0].n_sums, coeffs.dtype)
    return sums, _gather_tensors([(idx, group[1]) for idx, group in parts], n, functor.n_out)


class Coefficients:
    """A functor's ``(n, len(columns))`` coefficient rows, kept as their columns by name (in the
    functor's order, :func:`rows`): each a scalar for every leaf or an ``(n,)`` per-tensor vector,
    in the accumulator dtype ``dtype``.

    The kernels read them as one table (:meth:`table`). The JAX math reads the columns (:meth:`leaf`),
    so a coefficient known while tracing (a Python or NumPy number) stays a number there, and a term
    it zeroes is not computed: XLA keeps ``0 * g`` (it is NaN for an infinite g), and computing it
    can cost a read of g in a loop that would otherwise not touch it."""

    def __init__(self, n: int, dtype, columns: dict[str, Any]):
        self.n, self.dtype = n, np.dtype(dtype)
        self.names, self.columns = tuple(columns), list(columns.values())

    def named(self) -> dict[str, Any]:
        return dict(zip(self.names, self.columns))

    def subset(self, idx: Sequence[int], dtype) -> "Coefficients":
        """The rows of leaves ``idx``, in ``dtype``."""
        if len(idx) == self.n:
            return Coefficients(self.n, dtype, self.named())
        rows = np.asarray(idx)
        return Coefficients(len(idx), dtype, {k: c[rows] if np.ndim(c) == 1 else c for k, c in self.named().items()})

    def table(self, idx: Sequence[int], dtype) -> Array:
        """The ``(len(idx), C)`` table of leaves ``idx`` in ``dtype``, for the kernels."""
        sub = self.subset(idx, dtype)
        cols = [jnp.broadcast_to(jnp.asarray(c, dtype), (sub.n,)) for c in sub.columns]
        return jnp.stack(cols, axis=-1) if cols else jnp.zeros((sub.n, 0), dtype)

    def leaf(self, i: int) -> list:
        """Leaf i's coefficients in ``dtype``: NumPy scalars where known while tracing (the math on
        them is then the same as the kernel's, e.g. ``1 - b1`` rounded in f32), else JAX scalars."""
        out = []
        for c in self.columns:
            v = c[i] if np.ndim(c) == 1 else c
            out.append(np.asarray(v, self.dtype)[()] if isinstance(v, (int, float, np.number)) else jnp.asarray(v, self.dtype))
        return out


def _state_after(functor: Functor, sums: Array, streams: Streams) -> Streams:
    """For an update computed by XLA after a reduce that read its state (LAMB's norms read m and v):
    the state streams it overwrites made to depend on the reduce's ``sums``, by adding one exact
    zero computed from them (``(s > 0) * 0``: +0 whatever s is, NaN included, and XLA cannot fold
    it). XLA then runs the reduce before the state is overwritten, which it cannot see on its own
    (the new m does not depend on the norms): without it XLA copies the old state first, to keep
    it for the reduce (an optimization barrier does not stop that). The cost is an add per state
    element in the same loop."""
    zero = jnp.sum((sums > 0).astype(sums.dtype)) * 0
    streams = list(streams)
    for r in functor.replaces[1:]:
        streams[r] = [x + zero.astype(x.dtype) for x in streams[r]]
    return streams


def sums_by_name(name: str, sums: Array) -> Named:
    """The per-tensor sums ``(n, n_sums)`` of functor ``name`` (a fused functor: of its reduce) as
    ``(n,)`` columns by their names in its contract: ``sums_by_name("lars_norms", sums).p_norm``."""
    functor = FUNCTORS[name]
    names = functor.parts[0].outputs if functor.is_fused else functor.outputs
    return Named(names, [sums[:, k] for k in range(len(names))])


def rows(name: str, n: int, dtype, **columns) -> Coefficients:
    """Functor ``name``'s coefficient rows for n leaves, every column by its name in the functor's
    contract (``functors.h``): each a scalar (the same for every leaf) or an ``(n,)`` per-tensor
    vector."""
    expected = FUNCTORS[name].columns
    if set(columns) != set(expected) or len(columns) != len(expected):
        missing, extra = [k for k in expected if k not in columns], [k for k in columns if k not in expected]
        raise ValueError(f"fromax: {FUNCTORS[name].target} takes the columns {expected}; missing {missing}, unknown {extra}")
    return Coefficients(n, dtype, {k: columns[k] for k in expected})


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
