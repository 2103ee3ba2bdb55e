"""Engine optimizers on sharded parameters (8 virtual CPU devices; see tests/test_multidevice.py).

Every optimizer in helpers.ENGINE_OPTIMIZERS runs here. A sharded step must equal the unsharded step
(to f32 rounding: the partial sums are added in another order), keep every input sharding on its
outputs, and compile to a program whose only collectives are all-reduces of per-tensor partial sums
(a few elements per tensor): no all-gather, all-to-all, reduce-scatter or collective-permute; an
elementwise optimizer (helpers.REDUCING lists the others) compiles to none at all.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import fromax
from helpers import ENGINE_OPTIMIZERS, REDUCING, assert_trees_close, assert_trees_close_at_largest_scale

OPTIMIZERS = sorted(ENGINE_OPTIMIZERS)
LR = 0.1
MOVING = ("all-gather", "all-to-all", "reduce-scatter", "collective-permute")

# name -> (shape, dtype, spec on the 1-D mesh ("x",), spec on the 2-D mesh ("data", "model"))
LEAVES = {
    "dense": ((64, 32), jnp.float32, P("x", None), P("data", "model")),
    "bias": ((48,), jnp.float32, P("x"), P(("data", "model"))),
    "cols": ((16, 24), jnp.float32, P(None, "x"), P(None, "data")),
    "conv": ((4, 3, 8, 16), jnp.float32, P(None, None, None, "x"), P("model", None, None, "data")),
    "half": ((32, 16), jnp.bfloat16, P("x", None), P("model", None)),
    "small": ((5,), jnp.float32, P(), P()),
    "scalar": ((), jnp.float32, P(), P()),
}


def make_mesh(kind: str, axis_type=AxisType.Auto):
    if kind == "1d":
        return jax.make_mesh((8,), ("x",), axis_types=(axis_type,))
    return jax.make_mesh((4, 2), ("data", "model"), axis_types=(axis_type,) * 2)


def specs_for(layout: str) -> dict[str, P]:
    column = 3 if layout == "2d" else 2
    return {k: (P() if layout == "replicated" else v[column]) for k, v in LEAVES.items()}


def tree(seed: int):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(rng.normal(size=shape) * rng.uniform(0.5, 2.0), dtype) for k, (shape, dtype, _, _) in LEAVES.items()}


def place(tree_, mesh, specs):
    return {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in tree_.items()}


def sharded_problem(layout: str, seeds: tuple[int, int], axis_type=AxisType.Auto):
    """(mesh, specs, params, grads, sharded params, sharded grads) for a layout of LEAVES."""
    mesh = make_mesh("2d" if layout == "2d" else "1d", axis_type)
    specs = specs_for(layout)
    params, grads = tree(seeds[0]), tree(seeds[1])
    return mesh, specs, params, grads, place(params, mesh, specs), place(grads, mesh, specs)


def assert_only_small_all_reduces(hlo: str, n_leaves: int) -> int:
    """No collective moves a tensor; every all-reduce carries at most 3 sums per leaf. Returns the
    number of all-reduces."""
    for op in MOVING:
        assert op not in hlo, f"{op} in the compiled step"
    count = 0
    for line in hlo.splitlines():
        if re.search(r"\ball-reduce(-start)?\(", line):
            count += 1
            result = line.split("all-reduce")[0]
            for dims in re.findall(r"\w+\[([\d,]*)\]", result):
                elems = math.prod(int(d) for d in dims.split(",") if d)
                assert elems <= 3 * n_leaves, f"all-reduce of {elems} elements: {line.strip()}"
    return count


def assert_close(actual, expected, rtol: float = 2e-5):
    """Sharded and unsharded steps add partial sums in different orders: f32 leaves agree to f32
    rounding; bf16 leaves (rounded once from the same f32 result) to one or two bf16 ulps (2**-8)."""
    for k in expected:
        tol = 8e-3 if expected[k].dtype == jnp.bfloat16 else rtol
        assert_trees_close(actual[k], expected[k], rtol=tol, atol_rel=tol / 10, err=k)


def assert_same_shardings(actual, expected_specs, mesh):
    for k, x in actual.items():
        want = NamedSharding(mesh, expected_specs[k])
        assert x.sharding.is_equivalent_to(want, x.ndim), (k, x.sharding, want)


def state_specs_for(state, specs):
    """Each state leaf sharded like the parameter of its shape (LEAVES' shapes are all distinct),
    scalars (step counts, global sums) replicated."""
    by_shape = {LEAVES[k][0]: spec for k, spec in specs.items() if LEAVES[k][0] != ()}
    return jax.tree.map(lambda x: by_shape.get(tuple(x.shape), P()), state)


def unsharded_step(name, backend, grads, params):
    tx = ENGINE_OPTIMIZERS[name](LR, backend)
    return fromax.step(tx, grads, tx.init(params), params)[0]


@pytest.mark.parametrize("axis_type", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
@pytest.mark.parametrize("layout", ["1d", "2d", "replicated"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_jit_sharded_step_equals_unsharded(name, layout, axis_type):
    mesh, specs, params, grads, ps, gs = sharded_problem(layout, (0, 1), axis_type)
    tx = ENGINE_OPTIMIZERS[name](LR, "ffi")

    # Explicit sharding: creating a sharded array (Adam's zero moments) inside jit needs the mesh in
    # context, for optax's transformations as for fromax's.
    with jax.set_mesh(mesh) if axis_type == AxisType.Explicit else contextlib.nullcontext():
        _check_jit_sharded_step(name, layout, mesh, specs, params, grads, ps, gs, tx)


def _check_jit_sharded_step(name, layout, mesh, specs, params, grads, ps, gs, tx):
    state = jax.jit(tx.init)(ps)
    step = jax.jit(functools.partial(fromax.step, tx))
    new, new_state = step(gs, state, ps)
    updates, _ = jax.jit(tx.update)(gs, state, ps)

    expected = unsharded_step(name, "ffi", grads, params)
    assert_close(new, expected)
    assert_close(new, unsharded_step(name, "xla", grads, params))
    assert_close(jax.tree.map(jnp.add, params, updates), expected)
    assert_same_shardings(new, specs, mesh)
    assert_same_shardings(updates, specs, mesh)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)

    for fn, args in ((step, (gs, state, ps)), (jax.jit(tx.update), (gs, state, ps)), (jax.jit(tx.init), (ps,))):
        reductions = assert_only_small_all_reduces(fn.lower(*args).compile().as_text(), len(LEAVES))
        if layout == "replicated":
            assert reductions == 0


@pytest.mark.parametrize("mesh_kind", ["1d", "2d"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_shard_map_step_equals_unsharded(name, mesh_kind):
    mesh, specs, params, grads, ps, gs = sharded_problem(mesh_kind, (2, 3))
    tx = ENGINE_OPTIMIZERS[name](LR, "ffi")
    state = tx.init(params)
    state_specs = state_specs_for(state, specs)

    def local_step(g, s, p):  # the user's shard_map body: fromax sees per-device blocks
        return fromax.step(tx, g, s, p)

    def local_init(p):
        return tx.init(p)

    step = jax.jit(jax.shard_map(local_step, mesh=mesh, in_specs=(specs, state_specs, specs), out_specs=(specs, state_specs)))
    init = jax.jit(jax.shard_map(local_init, mesh=mesh, in_specs=(specs,), out_specs=state_specs))
    assert_trees_close(init(ps), state, rtol=2e-6)
    new, _ = step(gs, state, ps)
    assert_close(new, unsharded_step(name, "ffi", grads, params))
    assert_same_shardings(new, specs, mesh)
    reductions = assert_only_small_all_reduces(step.lower(gs, state, ps).compile().as_text(), len(LEAVES))
    assert (reductions > 0) == (name in REDUCING)

    # The pure-JAX reference follows the same rule (blocks that vary over an axis are shards).
    ref_tx = ENGINE_OPTIMIZERS[name](LR, "xla")
    ref_step = jax.jit(jax.shard_map(lambda g, s, p: fromax.step(ref_tx, g, s, p), mesh=mesh,
                                     in_specs=(specs, state_specs, specs), out_specs=(specs, state_specs)))
    assert_close(ref_step(gs, state, ps)[0], new)


@pytest.mark.skipif(tuple(int(v) for v in jax.__version__.split(".")[:2]) < (0, 10),
                    reason="jax < 0.10's custom_partitioning cannot decode uneven shardings (fails inside JAX)")
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_uneven_shards_are_whole_on_each_device_not_padded(name):
    # JAX refuses uneven shardings at jit boundaries; inside a program a constraint may ask for one.
    mesh = make_mesh("1d")
    params = {"u": jnp.linspace(-1.0, 2.0, 10), "v": jnp.ones((12, 8))}
    grads = {"u": jnp.linspace(0.5, -3.0, 10), "v": jnp.full((12, 8), 0.25)}

    def step(g, p):
        p = {k: jax.lax.with_sharding_constraint(v, NamedSharding(mesh, P("x"))) for k, v in p.items()}
        tx = ENGINE_OPTIMIZERS[name](LR, "ffi")
        return fromax.step(tx, g, tx.init(p), p)[0]

    assert_close(jax.jit(step)(grads, params), unsharded_step(name, "xla", grads, params))


@pytest.mark.parametrize("mesh_kind", ["1d", "2d"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_vmap_population_sharded_over_devices(name, mesh_kind):
    """A population of 8 models, members split over devices (and on the 2-D mesh each member's
    tensors split over "model"): batched kernels per device, equal to a loop over members."""
    mesh = make_mesh(mesh_kind)
    members = "x" if mesh_kind == "1d" else "data"
    inner = None if mesh_kind == "1d" else "model"
    rng = np.random.default_rng(4)
    shapes = {"w": (16, 6), "b": (6,)}
    params = {k: jnp.asarray(rng.normal(size=(8, *s)), jnp.float32) for k, s in shapes.items()}
    grads = {k: jnp.asarray(rng.normal(size=(8, *s)), jnp.float32) for k, s in shapes.items()}
    specs = {"w": P(members, inner, None), "b": P(members, None)}
    ps, gs = place(params, mesh, specs), place(grads, mesh, specs)
    lrs = jnp.linspace(0.01, 0.2, 8)

    def one(lr, g, p, backend="ffi"):
        tx = ENGINE_OPTIMIZERS[name](lr, backend)
        return fromax.step(tx, g, tx.init(p), p)[0]

    batched = jax.jit(jax.vmap(one))
    new = batched(lrs, gs, ps)
    for i in range(8):
        member = lambda t, i=i: {k: v[i] for k, v in t.items()}
        assert_close(member(new), one(lrs[i], member(grads), member(params), "xla"))
    assert_same_shardings(new, specs, mesh)
    hlo = batched.lower(lrs, gs, ps).compile().as_text()
    reductions = assert_only_small_all_reduces(hlo, 3 * 8)
    assert (reductions > 0) == (inner is not None and name in REDUCING)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_donated_sharded_step_updates_every_shard_in_place(name):
    mesh, specs, params, grads, ps, gs = sharded_problem("1d", (5, 6))
    tx = ENGINE_OPTIMIZERS[name](LR, "ffi")
    state = tx.init(ps)
    expected = unsharded_step(name, "ffi", grads, params)  # before donation (device_put may share buffers)
    step = jax.jit(functools.partial(fromax.step, tx), donate_argnums=(2,))
    before = {k: [s.data.unsafe_buffer_pointer() for s in v.addressable_shards] for k, v in ps.items() if v.size >= 16}
    new, _ = step(gs, state, ps)
    after = {k: [s.data.unsafe_buffer_pointer() for s in new[k].addressable_shards] for k in before}
    assert after == before
    assert_close(new, expected)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_through_sharded_step_equals_reference(name):
    mesh, specs, params, grads, ps, gs = sharded_problem("2d", (7, 8))

    def outer_loss(lr, g, p, backend):
        tx = ENGINE_OPTIMIZERS[name](lr, backend)
        new = fromax.step(tx, g, tx.init(p), p)[0]
        return sum(jnp.sum(jnp.sin(v.astype(jnp.float32))) for v in new.values())

    got = jax.jit(jax.grad(functools.partial(outer_loss, backend="ffi"), argnums=(0, 1, 2)))(LR, gs, ps)
    want = jax.grad(functools.partial(outer_loss, backend="xla"), argnums=(0, 1, 2))(LR, grads, params)
    # Adam's first step g / (sqrt(v) + eps) has d/dg = (sqrt(v) - |g| + eps) / (sqrt(v) + eps)^2: the
    # rounding of sqrt(v) (~|g| 1e-7, differing between sharded and reference sums) against eps = 1e-8
    # leaves ~|g| * 1e-7 / eps relative error in that derivative (~1e-3 at |g| ~ 1e-4), and on the
    # bf16 leaf that difference can round to two bf16 ulps (2 * 2**-8).
    rtol = 8e-3 if name == "adamw" else 1e-4
    assert_trees_close_at_largest_scale(got, want, rtol=rtol, atol_rel=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_gspmd_partitioner(name):
    """The same partitioning through XLA's older GSPMD propagation (custom_partitioning's
    infer_sharding_from_operands rather than the Shardy rule)."""
    previous = jax.config.jax_use_shardy_partitioner
    jax.config.update("jax_use_shardy_partitioner", False)
    try:
        mesh, specs, params, grads, ps, gs = sharded_problem("1d", (9, 10))
        tx = ENGINE_OPTIMIZERS[name](LR, "ffi")
        state = tx.init(ps)
        step = jax.jit(functools.partial(fromax.step, tx))
        new, _ = step(gs, state, ps)
        assert_close(new, unsharded_step(name, "ffi", grads, params))
        assert_same_shardings(new, specs, mesh)
        reductions = assert_only_small_all_reduces(step.lower(gs, state, ps).compile().as_text(), len(LEAVES))
        assert (reductions > 0) == (name in REDUCING)
    finally:
        jax.config.update("jax_use_shardy_partitioner", previous)


def test_per_tensor_norms_sharded():
    _, _, params, _, ps, _ = sharded_problem("2d", (11, 12))
    fn = jax.jit(fromax.per_tensor_norms)
    assert_trees_close(fn(ps), fromax.per_tensor_norms(params, backend="xla"), rtol=2e-6)
    assert assert_only_small_all_reduces(fn.lower(ps).compile().as_text(), len(LEAVES)) > 0


@pytest.mark.parametrize("mesh_kind", ["1d", "2d"])
@pytest.mark.parametrize("name", ["fromage", "lamb", "lars", "novograd"])
def test_stacked_axis_sharded_over_devices(name, mesh_kind):
    """``stacked_axes``: a (8, 16, 6) leaf of 8 stacked layers with its stack split over devices (on
    the 2-D mesh each layer also split over "model"), beside an unstacked leaf: the step equals the
    unsharded stacked step, keeps the shardings, and its only collectives are per-slice partial sums
    (none when the stack alone is split: each device holds whole layers)."""
    mesh = make_mesh(mesh_kind)
    layers = "x" if mesh_kind == "1d" else "data"
    inner = None if mesh_kind == "1d" else "model"
    rng = np.random.default_rng(5)
    params = {"w": jnp.asarray(rng.normal(size=(8, 16, 6)), jnp.float32), "head": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)}
    grads = jax.tree.map(lambda x: jnp.cos(x), params)
    specs = {"w": P(layers, inner, None), "head": P()}
    ps, gs = place(params, mesh, specs), place(grads, mesh, specs)
    tx = {"fromage": lambda: fromax.fromage(LR, stacked_axes={"w": 0, "head": None}),
          "lamb": lambda: fromax.lamb(LR, stacked_axes={"w": 0, "head": None}),
          "lars": lambda: fromax.lars(LR, stacked_axes={"w": 0, "head": None}),
          "novograd": lambda: fromax.novograd(LR, stacked_axes={"w": 0, "head": None})}[name]()
    step = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p)[0])
    new = step(gs, tx.init(ps), ps)
    assert_close(new, step(grads, tx.init(params), params))
    assert_same_shardings(new, specs, mesh)
    hlo = step.lower(gs, tx.init(ps), ps).compile().as_text()
    reductions = assert_only_small_all_reduces(hlo, 8 + 1)
    if inner is None:
        assert reductions == 0
