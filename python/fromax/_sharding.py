"""Engine calls on sharded tensors: partial sums on each shard, one small all-reduce, local updates.

An FFI custom call is opaque to XLA's SPMD partitioner, which by default all-gathers its operands
onto every device. Every engine call has the same structure (per-tensor sums, a few scalars per
tensor computed from them, an elementwise update), so it partitions the same way whatever the
optimizer: each device runs the kernels on its own shards, and the per-tensor partial sums, an
``(S, n, k)`` array, are all-reduced over the mesh axes that split each tensor, between the reduce
phase and the update phase. Parameters, gradients and state never move.

Two ways in, so the user writes nothing special:

* ``jax.jit`` with sharded arguments (automatic or explicit mesh axes): every call is wrapped in
  ``jax.experimental.custom_partitioning``. XLA's partitioner hands the call the operands' shardings
  and fromax returns the per-device program (:func:`_partition`) and keeps each tensor's sharding on
  its output. A dimension whose size its shards do not divide is replicated instead (never padded
  data in a norm). With one device the call lowers to the plain kernels.
* Inside ``jax.shard_map`` the operands are per-device blocks. A block that varies over a manual
  mesh axis (``check_vma=True``, shard_map's default, records this in its type) is taken to be a
  block of one tensor split along that axis, so the partial sums are ``psum``-ed over those axes.
  Tensors that vary over no axis are replicated and reduce locally. (With ``check_vma=False`` JAX
  does not record which axes a block varies over: fromax then sees only local blocks.)

An engine call is described by :class:`EngineCall`; its ``local`` function computes the call on whole
tensors or on shards, given the all-reduce (:class:`RowReduce`) to apply to per-tensor partial sums.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.custom_partitioning import ArrayMapping, SdyShardingRule, custom_partitioning
from jax.interpreters.mlir import ir
from jax.sharding import NamedSharding, PartitionSpec

from fromax._l2 import psum_norms

Array = jax.Array


class RowReduce:
    """All-reduce (sum) of per-tensor partial sums ``s[:, i, :]`` over the mesh axes ``axes[i]``
    that split tensor ``i``: one ``psum`` per distinct set of axes, none for unsplit tensors. Columns
    ``norms`` (a functor's ``*_norm`` outputs: shards' partial norms) combine as norms do
    (:func:`fromax._l2.psum_norms`), not by a sum."""

    def __init__(self, axes: tuple[tuple[str, ...], ...]):
        self.axes = axes

    @property
    def trivial(self) -> bool:
        """True when every tensor is whole on each device (nothing to all-reduce)."""
        return not any(self.axes)

    def __call__(self, s: Array, norms: tuple[bool, ...] = ()) -> Array:
        by_axes: dict[tuple[str, ...], list[int]] = {}
        for i, axes in enumerate(self.axes):
            if axes:
                by_axes.setdefault(axes, []).append(i)
        for axes, idx in by_axes.items():
            if len(idx) == s.shape[1]:
                s = _all_reduce(s, axes, norms)
            else:
                rows = np.asarray(idx)
                s = s.at[:, rows].set(_all_reduce(s[:, rows], axes, norms))
        return s


def _all_reduce(s: Array, axes: tuple[str, ...], norms: tuple[bool, ...]) -> Array:
    if not any(norms):
        return jax.lax.psum(s, axes)
    cols = [psum_norms(s[..., r], axes) if norm else jax.lax.psum(s[..., r], axes) for r, norm in enumerate(norms)]
    return jnp.stack(cols, axis=-1)


@dataclasses.dataclass(frozen=True)
class EngineCall:
    """One engine call: ``local(reduce, *operands, segments=..., **params)`` on whole tensors or shards.

    Operands are ``n_small`` small replicated arrays (hyperparameters, coefficients, initial norms),
    then ``streams`` lists of ``n`` tensors each (e.g. W then g); tensor ``i`` of every list has the
    same shape and gets the same sharding. The outputs are per-tensor rows ``(segments, n, k)``
    (``rows_out``) or ``outputs`` lists of one tensor per leaf, shaped and sharded like list 0's,
    led by such rows with ``sums_first`` (a per-tensor fused call: its sums, then its tensors).

    ``segments > 1`` (``jax.vmap`` over a population of models): every operand and output leads
    with the population axis, of that size. It may be sharded (members on different devices): each
    device then runs its ``segments / shards`` members, and nothing about other members is needed.
    """

    local: Callable
    params: tuple
    n_small: int
    streams: int
    rows_out: bool
    segments: int = 1
    outputs: int = 1
    sums_first: bool = False

    def __call__(self, reduce: RowReduce, *operands: Array) -> list[Array]:
        return self.local(reduce, *operands, segments=self.segments, **dict(self.params))


def run(call: EngineCall, *operands: Array) -> list[Array]:
    """Run an engine call on whole, sharded (jit) or per-device (shard_map) operands."""
    varying = frozenset().union(*(varying_axes(x) for x in operands))
    if varying:
        # The tensors' axes split them; a small operand varying over another axis (a per-device
        # learning rate, say) only makes the results vary too. Every operand of the kernel call is
        # given the same varying axes, as a primitive's operands must have.
        split = frozenset().union(*(varying_axes(x) for x in operands[call.n_small :]))
        operands = tuple(_make_varying(x, tuple(sorted(varying - varying_axes(x)))) for x in operands)
        n = (len(operands) - call.n_small) // call.streams
        return list(call(RowReduce((tuple(sorted(split)),) * n), *operands))
    return list(_partitioned(call)(*operands))


# ---- shard_map: the varying manual axes of a value (the attribute moved between jax versions) ----
def varying_axes(x: Array) -> frozenset:
    aval = jax.typeof(x)
    vma = getattr(aval, "vma", None)  # jax <= 0.9
    if vma is None:
        vma = getattr(getattr(aval, "manual_axis_type", None), "varying", frozenset())
    return frozenset(vma)


def _make_varying(x: Array, axes: tuple[str, ...]) -> Array:
    if not axes:
        return x
    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(x, axes, to="varying")
    return jax.lax.pvary(x, axes)


# ---- jit: custom_partitioning --------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _partitioned(call: EngineCall) -> custom_partitioning:
    n_tensors = lambda n_operands: (n_operands - call.n_small) // call.streams

    def whole(*operands):  # the call's meaning on whole tensors, and its lowering on one device
        return call(RowReduce(((),) * n_tensors(len(operands))), *operands)

    wrapped = custom_partitioning(whole)
    wrapped.def_partition(
        partition=functools.partial(_partition, call),
        infer_sharding_from_operands=functools.partial(_infer_output_shardings, call),
        sharding_rule=functools.partial(_sharding_rule, call),
    )
    return wrapped


def _entry_axes(entry) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _split_dim(mesh, size: int, entry, taken: tuple[str, ...] = ()):
    """A dimension's PartitionSpec entry if its shards divide it evenly and use no ``taken`` axis,
    else None (replicated: never padding in a norm)."""
    axes = _entry_axes(entry)
    if not axes or set(axes) & set(taken) or size % math.prod(mesh.shape[a] for a in axes):
        return None
    return axes[0] if len(axes) == 1 else axes


def _spec_entries(sharding, rank: int) -> tuple:
    if not isinstance(sharding, NamedSharding):
        return (None,) * rank
    return tuple(sharding.spec) + (None,) * (rank - len(sharding.spec))


def _plan(call: EngineCall, mesh, arg_shapes):
    """The shardings fromax runs with: ``(population entry, per-tensor specs)``. Each tensor keeps the
    sharding it has (list 0's, which the other lists are given), less unevenly split dimensions; the
    population axis (``segments > 1``) is split as tensor 0's is, for every operand."""
    tensors = list(arg_shapes)[call.n_small :]
    tensors = tensors[: len(tensors) // call.streams]
    population = None
    if call.segments > 1 and tensors:
        population = _split_dim(mesh, call.segments, _spec_entries(tensors[0].sharding, 1)[0])
    lead = _entry_axes(population)
    specs = []
    for t in tensors:
        entries = _spec_entries(t.sharding, len(t.shape))
        dims = [_split_dim(mesh, size, e, lead) for size, e in zip(t.shape, entries)]
        if call.segments > 1:
            dims[0] = population
        specs.append(PartitionSpec(*dims))
    return population, specs


def _output_shardings(call: EngineCall, mesh, population, specs: list[PartitionSpec]) -> list[NamedSharding]:
    rows = [NamedSharding(mesh, PartitionSpec(population))]
    if call.rows_out:
        return rows
    tensors = [NamedSharding(mesh, spec) for _ in range(call.outputs) for spec in specs]
    return rows + tensors if call.sums_first else tensors


_NO_MESH = jax.sharding.AbstractMesh((), ())


def _partition(call: EngineCall, mesh, arg_shapes, result_shape):
    del result_shape
    population, specs = _plan(call, mesh, arg_shapes)
    small = NamedSharding(mesh, PartitionSpec(population) if call.segments > 1 else PartitionSpec())
    arg_shardings = [small] * call.n_small + [NamedSharding(mesh, s) for _ in range(call.streams) for s in specs]
    lead = _entry_axes(population)
    # All-reduce over the axes that split a tensor itself; members of the population on other
    # devices are other models.
    reduce = RowReduce(tuple(tuple(a for e in spec for a in _entry_axes(e) if a not in lead) for spec in specs))
    local = dataclasses.replace(call, segments=call.segments // math.prod(mesh.shape[a] for a in lead))

    def per_device(*operands):
        # The per-device program works on local blocks, traced while the user's mesh may still be
        # the context mesh: with explicit axes (jax.set_mesh), jnp ops would then insert reshards,
        # which lower to `Sharding` custom calls that nothing partitions after this point (jax >=
        # 0.11: "No registered implementation for untyped custom call to Sharding"). No mesh here;
        # the psum's axis names come from the partitioner's axis environment.
        with jax.sharding.use_abstract_mesh(_NO_MESH):
            return local(reduce, *operands)

    return mesh, per_device, _output_shardings(call, mesh, population, specs), tuple(arg_shardings)


def _infer_output_shardings(call: EngineCall, mesh, arg_shapes, result_shape):
    """GSPMD propagation (``jax_use_shardy_partitioner=False``): outputs sharded like list 0."""
    del result_shape
    return _output_shardings(call, mesh, *_plan(call, mesh, arg_shapes))


def _sharding_rule(call: EngineCall, mesh, value_types, result_types) -> SdyShardingRule:
    """Shardy propagation: tensor i of every list and output i share their dimension factors, the
    small operands and the rows output are replicated, except that with ``segments > 1`` every
    operand and output shares the population factor of its leading dimension."""
    del mesh
    replicate: list[str] = []

    def mapping(prefix: str, ir_type, replicated: bool) -> ArrayMapping:
        names = [f"{prefix}_{d}" for d in range(len(ir.RankedTensorType(ir_type).shape))]
        if call.segments > 1:
            names[0] = "population"
        replicate.extend(n for n in names if replicated and n != "population")
        return ArrayMapping(*names)

    small = [mapping(f"s{k}", value_types[k], True) for k in range(call.n_small)]
    n = (len(value_types) - call.n_small) // call.streams
    tensors = [mapping(f"t{i}", value_types[call.n_small + i], False) for i in range(n)]
    rows = (mapping("r", result_types[0], True),) if call.rows_out or call.sums_first else ()
    results = rows if call.rows_out else rows + tuple(tensors) * call.outputs
    return SdyShardingRule(
        operand_mappings=tuple(small) + tuple(tensors) * call.streams,
        result_mappings=results,
        need_replication_factors=tuple(replicate),
    )
