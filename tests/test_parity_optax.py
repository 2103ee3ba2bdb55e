"""fromax against optax where they must agree in every corner: signatures (``optax.X`` -> ``fromax.X``
is a rename), non-finite values (a NaN or infinite norm poisons what it scales, exactly where it does
in optax), zero and denormal tensors, float64 to rounding (every coefficient in the accumulator
dtype; the f64 cases run in an x64 subprocess), and seeded random pytrees that mix all of these in
f32, bf16 and f64. Every optimizer with an optax counterpart, both backends, the optax contract and
the fused step.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import fromax
from family_cases import CASES
from helpers import passes_in_an_x64_process

# The optax counterpart of every fromax optimizer with one.
COUNTERPARTS = {
    "adamw": optax.adamw, "lamb": optax.lamb, "lars": optax.lars, "novograd": optax.novograd, "fromage": optax.fromage,
    "dog": contrib.dog, "dowg": contrib.dowg, "prodigy": contrib.prodigy, "dadapt_adamw": contrib.dadapt_adamw,
    "cocob": contrib.cocob, "mechanize": contrib.mechanize, "momo": contrib.momo, "momo_adam": contrib.momo_adam,
    "schedule_free": contrib.schedule_free, "schedule_free_sgd": contrib.schedule_free_sgd,
    "schedule_free_adamw": contrib.schedule_free_adamw, "schedule_free_eval_params": contrib.schedule_free_eval_params,
}
# Defaults that differ on purpose (README, "Differences from optax"): fromage's learning rate has the
# paper's default, and min_norm=None is the paper's exact rule where optax clamps norms at 1e-6.
DIFFERENT_DEFAULTS = {("fromage", "learning_rate"), ("fromage", "min_norm")}


def _signature(fn):
    return inspect.signature(getattr(fn, "__wrapped__", fn)).parameters


@pytest.mark.parametrize("name", sorted(COUNTERPARTS))
def test_signature_is_a_superset_of_optax(name):
    """Every optax argument, at the same position and of the same kind, with the same default."""
    theirs, ours = _signature(COUNTERPARTS[name]), _signature(getattr(fromax, name))
    ours_list = list(ours)
    for k, (arg, p) in enumerate(theirs.items()):
        assert arg in ours, f"fromax.{name} lacks optax's argument {arg}"
        assert ours[arg].kind == p.kind, (name, arg, ours[arg].kind, p.kind)
        if p.kind == p.POSITIONAL_OR_KEYWORD:
            assert ours_list[k] == arg, f"fromax.{name}: {arg} is positional argument {ours_list.index(arg)}, optax's is {k}"
        if (name, arg) not in DIFFERENT_DEFAULTS:
            assert ours[arg].default == p.default, (name, arg, ours[arg].default, p.default)
    extra = [arg for arg in ours if arg not in theirs]
    assert all(ours[arg].default is not inspect.Parameter.empty for arg in extra), (name, extra)


def test_every_fromax_optimizer_with_a_counterpart_is_listed():
    optimizers = {n for n in fromax.__all__ if callable(getattr(fromax, n)) and hasattr(getattr(fromax, n), "fromax_factory")}
    assert optimizers - {"hypergradient_adamw", "auto_hypergradient_adamw"} == set(COUNTERPARTS) - {"schedule_free_eval_params"}


# ---- the same values, run by run ---------------------------------------------------------------------
PARITY = {name: (make, theirs, needs_value) for name, (make, theirs, needs_value) in CASES.items() if theirs is not None}
PARITY["fromage"] = (lambda b: fromax.fromage(0.1, backend=b), lambda: optax.fromage(0.1, min_norm=0.0), False)
PARITY["fromage_min_norm"] = (lambda b: fromax.fromage(0.1, 1e-6, backend=b), lambda: optax.fromage(0.1), False)
PARITY["clip_fromage"] = (
    lambda b: optax.chain(optax.clip_by_global_norm(1.0), fromax.fromage(0.1, backend=b)),
    lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.fromage(0.1, min_norm=0.0)),
    False,
)
PARITY["clip_lamb"] = (
    lambda b: optax.chain(optax.clip_by_global_norm(1.0), fromax.lamb(0.1, backend=b)),
    lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.lamb(0.1)),
    False,
)
RUNS = [(backend, fused) for backend in ("xla", "ffi") for fused in (False, True)]
RUN_IDS = [f"{b}-{'fused' if f else 'contract'}" for b, f in RUNS]
BFLOAT16_NAMES = ["adamw", "fromage", "lamb", "lars", "novograd", "dog", "prodigy", "schedule_free_adamw", "momo"]


def _params(dtype, kind="normal"):
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    w = jax.random.normal(k[0], (4, 3), dtype)
    if kind == "zero":
        w = jnp.zeros((4, 3), dtype)
    elif kind == "denormal":
        w = w * jnp.asarray(np.finfo(np.dtype(dtype)).tiny / 64, dtype)
    return {"w": w, "b": jax.random.normal(k[1], (3,), dtype) * 0.1, "s": jnp.asarray(0.7, dtype)}


def _grads(dtype, steps=2):
    def one(i):
        k = jax.random.split(jax.random.PRNGKey(10 + i), 3)
        return {"w": jax.random.normal(k[0], (4, 3), dtype), "b": jax.random.normal(k[1], (3,), dtype), "s": jnp.asarray(0.3, dtype)}

    return [one(i) for i in range(steps)]


def _poison(tree, shape, index, value):
    """``tree`` with ``value`` at flat ``index`` of every floating leaf of shape ``shape`` (the chosen
    parameter, its gradient, or its moments in the state)."""

    def put(x):
        if getattr(x, "shape", None) != shape or not jnp.issubdtype(x.dtype, jnp.floating):
            return x
        return x.reshape(-1).at[index].set(value).reshape(shape)

    return jax.tree.map(put, tree)


NO_POISON = (None, np.nan, None, 0)


def _train(tx, run, params, grads, needs_value, poison=NO_POISON):
    """One step per entry of ``grads``: optax's (``run`` None; jitted, as fromax's eager calls are), or
    fromax's optax contract or fused step (``run`` = (backend, fused)). ``poison`` = (where, value,
    shape, flat index): ``value`` put into the params, the first gradients or the initial state."""
    where, value, shape, index = poison
    p = _poison(params, shape, index, value) if where == "params" else params
    state = tx.init(p)
    if where == "state":
        state = _poison(state, shape, index, value)
    dtype = jax.tree.leaves(params)[0].dtype
    for i, g in enumerate(grads):
        if where == "grads" and i == 0:
            g = _poison(g, shape, index, value)
        extra = {"value": jnp.asarray(1.0 + i, dtype)} if needs_value else {}
        if run is not None and run[1]:
            p, state = fromax.step(tx, g, state, p, **extra)
        else:
            update = tx.update if run is not None else jax.jit(tx.update)
            u, state = update(g, state, p, **extra)
            p = optax.apply_updates(p, u)
    return p


def _where_non_finite(tree):
    """Per leaf: 0 finite, 1 NaN, 2 +inf, 3 -inf, entry by entry."""

    def code(x):
        x = np.asarray(x, np.float64)
        return (np.isnan(x) * 1 + np.isposinf(x) * 2 + np.isneginf(x) * 3).tolist()

    return [code(x) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("poison", ["params", "grads", "state"])
@pytest.mark.parametrize("name", sorted(PARITY))
def test_non_finite_values_propagate_as_in_optax(name, poison):
    """NaN, +inf and -inf in one entry of the params, the first gradients or the state: after two steps
    the NaN and infinite entries of every leaf are exactly optax's (a NaN norm makes the whole
    tensor NaN, never the zero-norm branch), for both backends, the optax contract and the fused step."""
    _check_non_finite(name, poison, jnp.float32)


@pytest.mark.parametrize("name", BFLOAT16_NAMES)
def test_non_finite_values_propagate_as_in_optax_bfloat16(name):
    """The same with bfloat16 params, gradients and state (fromax accumulates in f32, optax in bf16:
    the NaN and infinite positions still agree)."""
    for poison in ("params", "grads", "state"):
        _check_non_finite(name, poison, jnp.bfloat16)


def _check_non_finite(name, where, dtype):
    make, theirs, needs_value = PARITY[name]
    params, grads = _params(dtype), _grads(dtype)
    for value in (np.nan, np.inf, -np.inf):
        poison = (where, value, (4, 3), 5)
        want = _where_non_finite(_train(theirs(), None, params, grads, needs_value, poison))
        for run, run_id in zip(RUNS, RUN_IDS):
            got = _where_non_finite(_train(make(run[0]), run, params, grads, needs_value, poison))
            assert got == want, f"{name} {np.dtype(dtype).name}, {value} in the {where}, {run_id}:\n fromax {got}\n optax  {want}"


def _close(got, want, rtol, what):
    """Leaf by leaf: the same non-finite entries, and the finite ones within ``rtol`` of the leaf's
    largest finite magnitude."""
    for k, (g, w) in enumerate(zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        assert g.shape == w.shape, (what, k)
        assert np.array_equal(np.isfinite(g), np.isfinite(w)), (what, k)
        scale = np.max(np.abs(w[np.isfinite(w)]), initial=0.0)
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * max(scale, np.finfo(np.float64).tiny), err_msg=f"{what}, leaf {k}")


@pytest.mark.parametrize("kind", ["zero", "denormal"])
@pytest.mark.parametrize("name", sorted(PARITY))
def test_zero_and_denormal_tensors_as_in_optax(name, kind):
    """A weight of zeros, or of denormals (whose squares underflow to a zero norm, as in optax): the
    same values as optax's after two steps, to f32 rounding."""
    make, theirs, needs_value = PARITY[name]
    params, grads = _params(jnp.float32, kind), _grads(jnp.float32)
    want = _train(theirs(), None, params, grads, needs_value)
    for run, run_id in zip(RUNS, RUN_IDS):
        got = _train(make(run[0]), run, params, grads, needs_value)
        _close(got, want, 2e-5, f"{name} {kind} {run_id}")


# ---- randomised pytrees --------------------------------------------------------------------------------
# Seeded examples: 1-6 leaves nested in dicts, lists and tuples, shapes from () to 3-d and empty, each
# leaf normal, small, large, zero or denormal; half the examples carry a NaN or an infinity in one
# entry of the params, the first gradients or the initial state. Every case gets its own examples.
SHAPES = [(), (1,), (5,), (0,), (3, 4), (2, 3, 4), (17,), (2, 1, 3), (64,)]
SCALES = {"normal": 1.0, "small": 1e-3, "large": 30.0, "zero": 0.0, "denormal": None}


def _random_example(name, k, dtype, steps=3):
    """Example ``k`` of case ``name``: (params, gradients per step, poison)."""
    rng = np.random.default_rng([k, *name.encode()])
    tree, shapes = {}, []
    for i in range(int(rng.integers(1, 7))):
        shape = SHAPES[rng.integers(len(SHAPES))]
        scale = list(SCALES.values())[rng.integers(len(SCALES))]
        scale = float(np.finfo(np.dtype(dtype)).tiny) / 64 if scale is None else scale
        leaf = jnp.asarray(rng.standard_normal(shape) * scale, dtype)
        shapes.append(shape)
        nest = rng.integers(3)
        if nest == 0:
            tree[f"p{i}"] = leaf
        elif nest == 1:
            tree.setdefault("layers", []).append({"w": leaf})
        else:
            tree["pair"] = (*tree.get("pair", ()), leaf)
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), dtype), tree) for _ in range(steps)]
    non_empty = [s for s in shapes if np.prod(s, dtype=int) > 0]
    poison = NO_POISON
    if non_empty and rng.random() < 0.5:
        shape = non_empty[rng.integers(len(non_empty))]
        where = ("params", "grads", "state")[rng.integers(3)]
        poison = (where, (np.nan, np.inf, -np.inf)[rng.integers(3)], shape, int(rng.integers(np.prod(shape, dtype=int))))
    return tree, grads, poison


def _check_random(name, dtype, examples, rtol):
    """fromax (both backends, contract and fused) against optax on ``examples`` random pytrees: the
    non-finite entries are optax's; the finite ones within ``rtol`` of each leaf's scale of optax's
    values on the same inputs in float32 or wider (bf16 optax rounds every intermediate; fromax
    accumulates in f32, as optax does for f32)."""
    make, theirs, needs_value = PARITY[name]
    for k in range(examples):
        params, grads, poison = _random_example(name, k, dtype)
        what = f"{name} {np.dtype(dtype).name} example {k} (shapes {[x.shape for x in jax.tree.leaves(params)]}, poison {poison[:2]} at {poison[2:]})"
        want = _train(theirs(), None, params, grads, needs_value, poison)
        wide = jnp.promote_types(dtype, jnp.float32)
        widen = lambda t: jax.tree.map(lambda x: x.astype(wide), t)  # noqa: E731
        want_values = want if wide == dtype else _train(theirs(), None, widen(params), [widen(g) for g in grads], needs_value, poison)
        for run, run_id in zip(RUNS, RUN_IDS):
            got = _train(make(run[0]), run, params, grads, needs_value, poison)
            assert all(x.dtype == dtype for x in jax.tree.leaves(got)), what
            assert _where_non_finite(got) == _where_non_finite(want), f"{what}, {run_id}: non-finite entries differ from optax's"
            _close(got, want_values, rtol, f"{what}, {run_id}")


@pytest.mark.parametrize("name", sorted(PARITY))
def test_random_pytrees_as_in_optax(name):
    """Three random float32 pytrees, three steps: optax's values to 5e-5 of each leaf's scale, and
    optax's NaN and infinite entries exactly."""
    _check_random(name, jnp.float32, examples=3, rtol=5e-5)


@pytest.mark.parametrize("name", BFLOAT16_NAMES)
def test_random_pytrees_as_in_optax_bfloat16(name):
    """Three random bfloat16 pytrees: optax's NaN and infinite entries exactly, and the values of optax
    run in float32 on the same inputs to 2^-3 of each leaf's scale (bfloat16 keeps 8 bits, and fromax
    stores its state in bfloat16 between steps; momo's step size, a ratio of loss differences, moves
    most)."""
    _check_random(name, jnp.bfloat16, examples=3, rtol=2**-3)


@pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 runs in the x64 subprocess (test_float64_in_an_x64_process)")
@pytest.mark.parametrize("name", sorted(PARITY))
def test_float64_matches_optax_to_rounding(name):
    """float64 params, ten steps: optax's values to 1e-14 of each leaf's scale (coefficients, weight
    decay and masks reach the kernels in float64, not rounded to float32)."""
    make, theirs, needs_value = PARITY[name]
    params, grads = _params(jnp.float64), _grads(jnp.float64, steps=10)
    want = _train(theirs(), None, params, grads, needs_value)
    for run, run_id in zip(RUNS, RUN_IDS):
        got = _train(make(run[0]), run, params, grads, needs_value)
        assert all(v.dtype == jnp.float64 for v in got.values())
        _close(got, want, 1e-14, f"{name} f64 {run_id}")


@pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 runs in the x64 subprocess (test_float64_in_an_x64_process)")
@pytest.mark.parametrize("name", sorted(PARITY))
def test_float64_random_pytrees_match_optax(name):
    """Two random float64 pytrees, three steps: optax's values to 1e-14 of each leaf's scale."""
    _check_random(name, jnp.float64, examples=2, rtol=1e-14)


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="this is the x64 run itself")
def test_float64_in_an_x64_process():
    """The float64 cases (x64 must be on before JAX starts), in a subprocess."""
    passes_in_an_x64_process(__file__, "test_float64_matches_optax_to_rounding or test_float64_random_pytrees_match_optax", 2 * len(PARITY))
