"""The optimizer family (tests/family_cases.py): numerics against optax (or the spec's oracle), on
both backends and through the fused step; minimisation; hyperparameter injection without
recompiles; state structure; optax wrappers; bf16; a constant number of custom calls."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import fromax
from fromax._functors import FUNCTORS
from family_cases import CASES, INJECTABLE
from helpers import assert_displacements_close, random_grads, random_tree
from hypergradient_oracle import AutoHypergradientOracle, HypergradientOracle

NAMES = list(CASES)
# Shapes: scalars, size-0 leaves, conv kernels, and a 75K-element matrix (split into chunks).
SHAPES = [(), (1,), (7,), (64,), (3, 3, 4, 8), (0,), (33, 17), (300, 250)]
STEPS = 100


@functools.lru_cache(maxsize=None)
def problem():
    params, _ = random_tree(0, len(SHAPES), shapes=SHAPES)
    grads = [random_grads(100 + k, params) for k in range(STEPS)]
    return params, grads


def value_of(params):
    """The "loss" passed to the optimizers that take one (MoMo): smooth in the params."""
    return sum(0.5 * jnp.sum(jnp.square(p.astype(jnp.float32))) for p in jax.tree.leaves(params))


def run(tx, fused: bool, params, grads, with_value: bool = True):
    """Open loop: a fixed gradient sequence, so rounding differences are not fed back through the
    gradients (a closed loop amplifies 1-ulp differences chaotically on such problems)."""

    @jax.jit
    def step(p, s, g):
        extra = {"value": value_of(p)} if with_value else {}
        if fused:
            return fromax.step(tx, g, s, p, **extra)
        u, s = optax.with_extra_args_support(tx).update(g, s, p, **extra)
        return optax.apply_updates(p, u), s

    p, s = params, tx.init(params)
    for g in grads:
        p, s = step(p, s, g)
    return p, s


ORACLES = {
    "hypergradient_adamw": lambda p: HypergradientOracle(p, lr=1e-2, beta_hyper=1e-3),
    "hypergradient_adamw_log": lambda p: HypergradientOracle(p, lr=1e-2, beta_hyper=1e-2, log_scale=True),
    "auto_hypergradient_adamw": lambda p: AutoHypergradientOracle(p, lr=1e-2, warmup_steps=3),
    "auto_hypergradient_adamw_full": lambda p: AutoHypergradientOracle(p, lr=1e-2, warmup_steps=3, adapt_momentum=True, track_surprise=True),
}


@functools.lru_cache(maxsize=None)
def expected(name):
    params, grads = problem()
    make_fromax, make_optax, _ = CASES[name]
    if make_optax is not None:
        return run(make_optax(), False, params, grads)[0], None
    oracle = ORACLES[name](jax.tree.leaves(params))
    for g in grads:
        oracle.step(jax.tree.leaves(g))
    return jax.tree.unflatten(jax.tree.structure(params), oracle.p), oracle


# Tolerance: 1e-4 of each leaf's displacement after 100 f32 steps. The kernels compute the same
# formulas as optax in f32 but differ by ulps (multiplications by reciprocals, sums in another
# order, contractions); the observed differences are <= 6e-6 of the displacement. Where the step
# size is fed back from global sums every step (MoMo's Polyak step, the hypergradient learning
# rate), the f32 sums over 150K elements (XLA sums in f32; the kernels combine blocks in f64) drift
# the step size apart by up to 4e-4 over 100 steps: 2e-3 there.
FEEDBACK = ("momo", "hypergradient", "auto_hypergradient")


@pytest.mark.parametrize("mode", ["ffi_fused", "ffi_update", "xla_update"])
@pytest.mark.parametrize("name", NAMES)
def test_matches_counterpart_over_100_steps(name, mode):
    params, grads = problem()
    backend, path = mode.split("_")
    p, state = run(CASES[name][0](backend), path == "fused", params, grads)
    want, oracle = expected(name)
    assert_displacements_close(p, want, params, rtol=2e-3 if name.startswith(FEEDBACK) else 1e-4)
    if oracle is not None:  # the adapted scalars too
        np.testing.assert_allclose(float(state.learning_rate), oracle.lr, rtol=2e-3)
        if hasattr(oracle, "gain"):
            np.testing.assert_allclose(float(state.b1), oracle.b1, rtol=1e-5)
            np.testing.assert_allclose(float(state.gain), oracle.gain, rtol=1e-4, atol=1e-7)


# ---- minimisation: a quadratic and Rosenbrock, from zero and from a non-zero start -------------------
def quadratic(p):
    return 0.5 * jnp.sum((p["x"] - 1.0) ** 2) + 2.0 * jnp.sum((p["y"] + 0.5) ** 2)


def rosenbrock(p):
    return jnp.sum((1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2)


STARTS = {"zero": (0.0, 0.0), "nonzero": (-1.2, 1.0)}
# Settings for these small ill-conditioned problems where the equivalence settings are too bold
# (plain-SGD-like steps of 0.1-0.3 diverge on Rosenbrock). Mechanic from a non-zero start needs a
# larger s_init: with 1e-6 its first moves are below f32 resolution of x0 and it never starts (the
# same in optax).
MINIMISE = {
    "lars": lambda: fromax.lars(3e-3, trust_coefficient=1.0),
    "lars_nesterov_masked": lambda: fromax.lars(
        3e-3, weight_decay=1e-4, weight_decay_mask={"x": True, "y": False}, trust_coefficient=1.0,
        trust_ratio_mask={"x": True, "y": False}, nesterov=True,
    ),
    "mechanize": lambda: fromax.mechanize(fromax.adamw(1e-2), s_init=1e-4),
    "schedule_free_sgd": lambda: fromax.schedule_free_sgd(2e-3, warmup_steps=5, weight_decay=1e-3),
}


@pytest.mark.parametrize("start", list(STARTS))
@pytest.mark.parametrize("objective", [quadratic, rosenbrock], ids=["quadratic", "rosenbrock"])
@pytest.mark.parametrize("name", NAMES)
def test_minimises(name, objective, start):
    x0, y0 = STARTS[start]
    params = {"x": jnp.full((4,), x0), "y": jnp.full((4,), y0)}
    tx = MINIMISE[name]() if name in MINIMISE else CASES[name][0]("ffi")

    @jax.jit
    def step(p, s):
        v, g = jax.value_and_grad(objective)(p)
        return fromax.step(tx, g, s, p, value=v)

    p, s = params, tx.init(params)
    for _ in range(300):
        p, s = step(p, s)
    before, after = float(objective(params)), float(objective(p))
    assert np.isfinite(after)
    assert after < 0.5 * before, (before, after)


# ---- injected and scheduled hyperparameters: one compilation --------------------------------------
@pytest.mark.parametrize("name", list(INJECTABLE))
def test_injected_hyperparameters_do_not_recompile(name):
    factory, hyper = INJECTABLE[name]
    params, grads = random_tree(3, 5, shapes=SHAPES[:5])
    tx = optax.inject_hyperparams(functools.partial(factory, backend="ffi"))(**hyper)
    state = tx.init(params)

    @jax.jit
    def step(p, s, g):
        u, s = optax.with_extra_args_support(tx).update(g, s, p, value=value_of(p))
        return optax.apply_updates(p, u), s

    p, s = step(params, state, grads)
    for k, scale in enumerate([0.5, 2.0, 0.1]):
        old = s.hyperparams["learning_rate"]
        s.hyperparams["learning_rate"] = jnp.asarray(hyper["learning_rate"] * scale, old.dtype)
        p, s = step(p, s, random_grads(k, params))
    assert step._cache_size() == 1
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(p))


@pytest.mark.parametrize("name", ["adamw", "lamb", "lars", "dog", "prodigy", "schedule_free_adamw"])
def test_scheduled_learning_rate_compiles_once_and_follows_the_schedule(name):
    factory, hyper = INJECTABLE[name]
    params, grads = random_tree(4, 4, shapes=SHAPES[:4])
    schedule = lambda count: jnp.where(count < 5, hyper["learning_rate"] * (1.0 - count / 5), 0.0)
    tx = factory(**{**hyper, "learning_rate": schedule}, backend="ffi")
    step = jax.jit(functools.partial(fromax.step, tx))
    p, s = params, tx.init(params)
    for k in range(7):
        p_new, s = step(grads, s, p)
        # The schedule reached 0: no more steps (LARS' momentum and Schedule-Free's averaging keep moving).
        if k >= 5 and name not in ("lars", "schedule_free_adamw"):
            assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree.leaves(p_new), jax.tree.leaves(p)))
        p = p_new
    assert step._cache_size() == 1


# ---- state structure and dtypes are kept --------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_keeps_structure_and_dtypes(name):
    params, grads = random_tree(5, 6, shapes=SHAPES[:6])
    tx = CASES[name][0]("ffi")
    state0 = tx.init(params)
    step = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p, value=value_of(p)))
    state, p = state0, params
    for _ in range(3):
        p, state = step(grads, state, p)
    assert jax.tree.structure(state) == jax.tree.structure(state0)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state0)):
        assert a.dtype == b.dtype and a.shape == b.shape


# ---- inside optax wrappers ---------------------------------------------------------------------------
WRAPPERS = {
    "chain": lambda tx: optax.chain(optax.clip_by_global_norm(1.0), tx),
    "multi_steps": lambda tx: optax.MultiSteps(tx, every_k_schedule=2),
    "apply_if_finite": lambda tx: optax.apply_if_finite(tx, max_consecutive_errors=3),
    "sam": lambda tx: contrib.sam(tx, optax.sgd(1e-2), sync_period=2),
    "schedule_free": lambda tx: contrib.schedule_free(tx, learning_rate=1e-2),
}


# optax.MultiSteps and contrib.sam do not pass extra arguments (MoMo's value=) to the inner
# optimizer, so MoMo cannot run inside them.
WRAPPED = [(n, w) for n in NAMES for w in WRAPPERS if not (CASES[n][2] and w in ("multi_steps", "sam"))]


@pytest.mark.parametrize(("name", "wrapper"), WRAPPED)
def test_inside_optax_wrappers_matches_the_reference(name, wrapper):
    params, _ = random_tree(6, 5, shapes=SHAPES[:5])
    grads = [random_grads(200 + k, params) for k in range(6)]
    ends = []
    for backend in ("ffi", "xla"):
        tx = WRAPPERS[wrapper](CASES[name][0](backend))
        ends.append(run(tx, False, params, grads, with_value=CASES[name][2])[0])
    assert_displacements_close(ends[0], ends[1], params, rtol=1e-5)
    assert any(float(jnp.max(jnp.abs(a - b))) > 0 for a, b in zip(jax.tree.leaves(ends[0]), jax.tree.leaves(params)) if a.size)


# ---- bf16 parameters: f32 accumulation, bf16 storage ---------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_bf16_params_accumulate_in_f32(name):
    params, _ = random_tree(7, 6, dtypes=(jnp.bfloat16,), shapes=SHAPES[:6] + [(300, 250)])
    grads = [random_grads(300 + k, params) for k in range(5)]
    p_ffi, s_ffi = run(CASES[name][0]("ffi"), True, params, grads)
    p_xla, _ = run(CASES[name][0]("xla"), True, params, grads)
    for a, b in zip(jax.tree.leaves(p_ffi), jax.tree.leaves(p_xla)):
        assert a.dtype == jnp.bfloat16
        # Same f32 math, rounded once to bf16: at most a couple of bf16 ulps apart.
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=2e-2, atol=1e-2 * (float(jnp.max(jnp.abs(b.astype(jnp.float32)))) if b.size else 0))
    init = CASES[name][0]("ffi").init(params)
    assert [x.dtype for x in jax.tree.leaves(s_ffi)] == [x.dtype for x in jax.tree.leaves(init)]


# ---- a constant number of custom calls, whatever the number of leaves ------------------------------
def fromax_calls(tx, n_leaves: int, fused: bool) -> list[str]:
    params, grads = random_tree(8, n_leaves, shapes=[(3, 4), (5,), (2, 2, 2)])
    state = tx.init(params)
    if fused:
        fn = lambda g, s, p: fromax.step(tx, g, s, p, value=1.0)
    else:
        fn = lambda g, s, p: optax.with_extra_args_support(tx).update(g, s, p, value=1.0)
    hlo = jax.jit(fn).lower(grads, state, params).as_text()
    return re.findall(r'(?:custom_call_target = "|stablehlo.custom_call @)(fromax_\w+)', hlo)


@pytest.mark.parametrize("name", NAMES)
def test_custom_calls_per_step_do_not_grow_with_the_leaves(name):
    """The fused step: its reduce and update calls. The optax contract: the same reduce calls, the
    update in XLA (fromax._engine's docstring says why)."""
    make = CASES[name][0]
    few, many = fromax_calls(make("ffi"), 3, True), fromax_calls(make("ffi"), 60, True)
    assert 1 <= len(few) <= 3 and few == many, (few, many)
    contract, contract_many = fromax_calls(make("ffi"), 3, False), fromax_calls(make("ffi"), 60, False)
    reduces = {f.target for f in FUNCTORS.values() if f.is_reduce}
    fused = {f.target for f in FUNCTORS.values() if f.is_fused}  # a fused call holds its reduce
    assert contract == contract_many and set(contract) <= reduces, (contract, contract_many)
    assert len(contract) == sum(1 for call in few if call in reduces or call in fused)


@pytest.mark.parametrize("name,target", [("lamb", "fromax_lamb"), ("lars", "fromax_lars"), ("novograd", "fromax_novograd_step")])
def test_per_tensor_couplings_fuse_into_one_call(name, target):
    """LAMB's, LARS's and NovoGrad's fused steps (like Fromage's) are one per-tensor fused call:
    the tensor's sums, its coefficients (trust ratio, moment) and its update in one visit;
    vmapped, still one call (segments)."""
    make = CASES[name][0]
    assert fromax_calls(make("ffi"), 3, True) == fromax_calls(make("ffi"), 60, True) == [target]
    tx = make("ffi")
    params, grads = random_tree(9, 5, shapes=[(3, 4), (5,)])
    batch = lambda tree: jax.tree.map(lambda x: jnp.stack([x, 2 * x]), tree)
    vmapped = jax.jit(jax.vmap(lambda g, p: fromax.step(tx, g, tx.init(p), p)))
    hlo = vmapped.lower(batch(grads), batch(params)).as_text()
    assert re.findall(r"stablehlo.custom_call @(fromax_\w+)", hlo) == [target] and "segments = 2" in hlo


def donated_step_hlo(name: str, path: str) -> str:
    """The compiled program of one donated step (params and state, in output order) over a (37, 3)
    and a (111,) leaf: ``path`` "fused" (``fromax.step``), "contract" (``tx.update`` +
    ``optax.apply_updates``), or either with " xla" (``backend="xla"``)."""
    make, _, needs_value = CASES[name]
    return step_hlo(make("xla" if path.endswith("xla") else "ffi"), path.startswith("fused"), needs_value, donate=True)


def step_hlo(tx, fused: bool, needs_value: bool, donate: bool) -> str:
    """The compiled program of one step of ``tx`` over a (37, 3) and a (111,) leaf, ``fromax.step``
    or the optax contract, params and state donated (in output order) or nothing donated."""
    tx = optax.with_extra_args_support(tx)
    params = {"w": jnp.full((37, 3), 0.5, jnp.float32), "b": jnp.full((111,), 0.1, jnp.float32)}
    grads = jax.tree.map(lambda p: p * 0.1, params)
    extra = {"value": jnp.float32(1.0)} if needs_value else {}

    def step(g, p, s):
        if fused:
            return fromax.step(tx, g, s, p, **extra)
        u, s = tx.update(g, s, p, **extra)
        return optax.apply_updates(p, u), s

    return jax.jit(step, donate_argnums=(1, 2) if donate else ()).lower(grads, params, tx.init(params)).compile().as_text()


@pytest.mark.parametrize("path", ["fused", "contract", "contract xla", "fused xla"])
@pytest.mark.parametrize("name", NAMES)
def test_donated_step_copies_no_tensor(name, path):
    """Params and state donated in output order: every state result is written over its state and
    the new params over the params, with no leaf-sized copy first. A copy is a pass over memory XLA
    added because a loop or kernel reads a tensor another one overwrites in no order XLA can see (a
    reduction reading state the update overwrites, a wrapped base's state not written in place, or,
    where XLA computes the update, the params' loop reading old state: fromax._functors' XLA form
    of the math and ``_engine.update``'s ``after=`` exist to avoid that)."""
    copied = re.findall(r"= f32\[(37,3|111)\]\{[^}]*\} copy\(", donated_step_hlo(name, path))
    assert copied == [], copied


# The base optimizer's increment u of fromax.schedule_free is read by two loops (z' = z + u, and
# the params' loop recovering z from z'): XLA writes it to a temporary. Being any optax
# transformation's output, it cannot be computed twice apart as schedule_free_adamw's u is.
TEMPORARIES = {"schedule_free": 1}


def leaf_sized_writes(hlo: str, shape: str) -> tuple[int, int]:
    """(instructions writing an f32[shape] tensor, results of the program that one of them wrote)
    in a compiled program's entry computation."""
    entry = hlo.split("ENTRY", 1)[1]
    defs = {name: (sh, op) for name, sh, op in re.findall(r"%(\S+) = (\S+?)(?:\{[^}]*\})? ([\w-]+)\(", entry)}
    written = [n for n, (sh, op) in defs.items() if sh == f"f32[{shape}]" and op not in ("parameter", "bitcast", "tuple")]
    root = re.search(r"ROOT %\S+ = .*? tuple\((.*)\)", entry).group(1)
    results = [n for n in re.findall(r"%([\w.\-]+)", root) if n in written]
    return len(written), len(results)


@pytest.mark.parametrize("name", NAMES)
def test_contract_step_writes_no_temporary(name):
    """``tx.update`` + ``optax.apply_updates``, donated: every leaf-sized tensor XLA writes is a
    result of the step (a temporary is a fresh buffer written and read again in every step)."""
    writes, results = leaf_sized_writes(donated_step_hlo(name, "contract"), "37,3")
    assert results >= 1 and writes == results + TEMPORARIES.get(name, 0), (writes, results)


def leaf_streams(hlo: str, shape: str = "37,3") -> int:
    """Leaf-sized streams of a compiled program: per instruction writing an f32[shape] tensor (a
    loop, a copy), that write and each f32[shape] operand it reads, over the entry and every
    computation it calls but fused ones (optax's conditionals: both branches count)."""
    total = 0
    for comp in re.split(r"\n(?=\S)", hlo):
        if comp.startswith(("HloModule", "%fused", "%wrapped")):
            continue
        defs = dict(re.findall(rf"%(\S+) = f32\[{shape}\]\{{[^}}]*\}} ([\w-]+)\(", comp))
        for name, op in defs.items():
            if op not in ("parameter", "bitcast", "get-tuple-element"):
                operands = re.search(rf"%{re.escape(name)} = \S+ [\w-]+\(([^)]*)\)", comp).group(1)
                total += 1 + sum(1 for x in re.findall(r"%([\w.\-]+)", operands) if x in defs)
    return total


# Weight decay 0, known when the optimizer is built: the XLA form reads no params for it.
NO_DECAY = {
    "cocob_no_decay": (lambda: fromax.cocob(), lambda: contrib.cocob()),
    "schedule_free_sgd_no_decay": (lambda: fromax.schedule_free_sgd(), lambda: contrib.schedule_free_sgd()),
    "schedule_free_adamw_no_decay": (lambda: fromax.schedule_free_adamw(), lambda: contrib.schedule_free_adamw()),
    "lars_no_decay": (lambda: fromax.lars(0.1), lambda: optax.lars(0.1)),
    "novograd_no_decay": (lambda: fromax.novograd(0.1), lambda: optax.novograd(0.1)),
}
# Undonated, optax's schedule-free params loop reads the old z; fromax's XLA form recovers it
# from z' (one more stream in schedule_free_adamw, whose u is recomputed there; two in
# schedule_free, whose base increment is a temporary), so that donated it copies nothing where
# optax copies z.
MORE_STREAMS_UNDONATED = {"schedule_free": 2, "schedule_free_adamw": 1, "schedule_free_adamw_no_decay": 1}


@pytest.mark.parametrize("donate", [True, False], ids=["donated", "undonated"])
@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n][1] is not None] + list(NO_DECAY))
def test_contract_streams_no_more_than_optax(name, donate):
    """``tx.update`` + ``optax.apply_updates`` reads and writes no more leaf-sized streams than
    optax's counterpart through the same contract (the XLA loops of a step are memory-bound, so
    streams are its cost), donated and not."""
    if name in NO_DECAY:
        (make, make_optax), needs_value = NO_DECAY[name], False
    else:
        make, make_optax, needs_value = CASES[name][0], CASES[name][1], CASES[name][2]
        make = functools.partial(make, "ffi")
    ours = leaf_streams(step_hlo(make(), False, needs_value, donate))
    theirs = leaf_streams(step_hlo(make_optax(), False, needs_value, donate))
    allowed = 0 if donate else MORE_STREAMS_UNDONATED.get(name, 0)
    assert ours <= theirs + allowed, (ours, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_eager_init_state_can_be_donated(name):
    """init outside jit gives every state leaf its own buffer, so a step donating the state runs
    (one array shared by two fields is refused: "donate the same buffer twice")."""
    make, _, needs_value = CASES[name]
    tx = make("ffi")
    params = {"w": jnp.full((6, 4), 0.5, jnp.float32), "b": jnp.full((4,), 0.1, jnp.float32)}
    state = tx.init(params)
    leaves = [x for x in jax.tree.leaves(state) if isinstance(x, jax.Array)]
    assert len({x.unsafe_buffer_pointer() for x in leaves}) == len(leaves)
    extra = {"value": jnp.float32(1.0)} if needs_value else {}
    step = jax.jit(lambda g, p, s: fromax.step(tx, g, s, p, **extra), donate_argnums=(1, 2))
    new_params, _ = step(jax.tree.map(lambda p: p * 0.1, params), jax.tree.map(jnp.copy, params), state)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(new_params))
