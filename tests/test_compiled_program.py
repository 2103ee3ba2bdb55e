"""What the compiled step looks like: fromax custom calls, their count, recompiles, buffer aliasing."""

from __future__ import annotations

import functools
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
from helpers import random_tree


def _fromax_calls(hlo_text: str) -> list[str]:
    return re.findall(r'custom_call_target="(fromax_\w+)"', hlo_text)


@pytest.mark.parametrize("n_leaves", [1, 3, 40, 256, 600])
@pytest.mark.parametrize("mixed", [False, True])
def test_custom_call_count_is_constant(n_leaves, mixed):
    """One call per accumulator group (f32/bf16/f16 share the f32 group) and per 256 leaves
    (fromax._engine.LEAVES_PER_CALL), whatever the shapes."""
    dtypes = (jnp.float32, jnp.bfloat16, jnp.float16) if mixed else (jnp.float32,)
    params, grads = random_tree(0, n_leaves, dtypes=dtypes, shapes=[(4,), (2, 3), ()])
    calls = -(-n_leaves // 256)
    for p_bound in (None, 1.0):
        tx = fromax.fromage(p_bound=p_bound)  # backend="auto" picks the kernel on CPU
        state = tx.init(params)
        fused = jax.jit(functools.partial(fromax.step, tx)).lower(grads, state, params).compile().as_text()
        update = jax.jit(tx.update).lower(grads, state, params).compile().as_text()
        # The optax contract reduces on the kernel and updates in XLA (see fromax._engine).
        assert _fromax_calls(fused) == ["fromax_fromage"] * calls
        assert _fromax_calls(update) == ["fromax_fromage_sums"] * calls
    init = jax.jit(fromax.fromage(p_bound=1.0).init).lower(params).compile().as_text()
    assert _fromax_calls(init) == ["fromax_norm"] * calls


def test_xla_backend_has_no_custom_calls():
    params, grads = random_tree(0, 5)
    tx = fromax.fromage(backend="xla")
    text = jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(params), params).compile().as_text()
    assert _fromax_calls(text) == []


def test_hyperparameters_are_operands_not_attributes():
    params, grads = random_tree(0, 4)
    tx = fromax.fromage(0.01, p_bound=2.0)
    text = jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(params), params).as_text()
    call = next(line for line in text.splitlines() if "fromax_fromage" in line and "custom_call" in line)
    attrs = re.search(r"backend_config = \{([^}]*)\}", call).group(1)
    assert attrs.strip() == "delta = 0 : i64, segments = 1 : i64"  # structure only; lr and p_bound are operands


def test_changing_lr_never_recompiles():
    params, grads = random_tree(1, 6)
    # inject_hyperparams: lr lives in the state as an array.
    tx = optax.inject_hyperparams(fromax.fromage)(learning_rate=0.01)
    step = jax.jit(functools.partial(fromax.step, tx))
    state = tx.init(params)
    results = []
    for lr in (0.01, 0.1, 0.3):
        state.hyperparams["learning_rate"] = jnp.asarray(lr)
        new, _ = step(grads, state, params)
        results.append(np.asarray(new["leaf0003"]))
    assert step._cache_size() == 1
    assert not np.allclose(results[0], results[1])  # the new lr really was applied
    # A schedule: the lr changes every step inside one compiled program.
    sched = optax.linear_schedule(0.1, 0.001, transition_steps=5)
    tx = fromax.fromage(sched)
    step = jax.jit(functools.partial(fromax.step, tx))
    state, p = tx.init(params), params
    deltas = []
    for _ in range(5):
        new, state = step(grads, state, p)
        deltas.append(float(jnp.linalg.norm(new["leaf0003"] - p["leaf0003"])))
        p = new
    assert step._cache_size() == 1
    assert deltas[0] > 3 * deltas[-1]  # lr fell 0.1 -> 0.021 over these steps: the step shrank with it


def test_donated_step_updates_every_parameter_in_place():
    params, grads = random_tree(2, 30, dtypes=(jnp.float32, jnp.bfloat16), shapes=[(5,), (300, 400), (), (3, 3, 8, 8)])
    tx = fromax.fromage(p_bound=1.0)
    state = tx.init(params)
    step = jax.jit(functools.partial(fromax.step, tx), donate_argnums=(2,))
    before = [x.unsafe_buffer_pointer() for x in jax.tree.leaves(params)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Some donated buffers were not usable" would fail the test
        new, _ = step(grads, state, params)
    after = [x.unsafe_buffer_pointer() for x in jax.tree.leaves(new)]
    assert after == before
    assert all(x.is_deleted() for x in jax.tree.leaves(params))
    # And the compiled program has no parameter-sized copy to get there.
    text = step.lower(grads, state, new).compile().as_text()
    assert not re.search(r"= f32\[300,400\]\{[^}]*\} copy\(", text)


# ---- the compile-time guard and the layouts left to XLA (python/fromax/_primitives.py, _lower) ----
def _fused_step_hlo(tx, params, grads) -> str:
    return jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(params), params).as_text(dialect="hlo")


@pytest.mark.parametrize("make", [fromax.fromage, functools.partial(fromax.adamw, 1e-3), functools.partial(fromax.lamb, 1e-3)],
                         ids=["fromage", "adamw", "lamb"])
def test_in_place_calls_carry_the_compile_guard(make):
    """The guard repeated as operands 0 and 1 and aliased first: XLA's in-place fusion check then
    stops at its first pair instead of walking aliases x operands per gradient."""
    params, grads = random_tree(0, 7, shapes=[(4,), (2, 3)])
    text = _fused_step_hlo(make(), params, grads)
    calls = [line for line in text.splitlines() if "custom-call(" in line and "output_to_operand_aliasing" in line]
    assert calls, "the fused step has no in-place fromax call"
    for line in calls:
        operands = re.search(r"custom-call\(([^)]*)\)", line).group(1).split(", ")
        assert operands[0] == operands[1]
        aliasing = re.search(r"output_to_operand_aliasing=\{(.*?)\}, ", line).group(1)
        assert aliasing.startswith("{0}: (0, {})")
        # every leaf's parameter is still written in place, after the guard
        assert aliasing.count("(") == 1 + len(jax.tree.leaves(params)) * (1 if "fromage" in line else 3)
        assert "operand_layout_constraints" not in line


def _guard_shapes(hlo_text: str) -> list[str]:
    """The shape of each in-place fromax call's guard (its operand 0)."""
    shapes = {m.group(1): m.group(2) for m in re.finditer(r"(%[\w.-]+) = (\w+\[[\d,]*\])", hlo_text)}
    calls = re.findall(r'custom-call\((%[\w.-]+),[^\n]*custom_call_target="fromax_\w+"[^\n]*output_to_operand_aliasing', hlo_text)
    return [shapes[c] for c in calls]


@pytest.mark.parametrize("make", [fromax.fromage, functools.partial(fromax.lars, 0.1), functools.partial(fromax.adamw, 1e-3)],
                         ids=["fromage", "lars", "adamw"])
def test_a_step_of_fromax_calls_alone_is_not_run_inline(make):
    """XLA's CPU runtime runs an executable whose cost analysis is under 1000 flops synchronously on
    the calling thread, and counts a custom call as -1 flops: a fused step jitted on its own would
    block its caller. A call over >= 2^16 stream elements carries a guard that XLA counts at 4096
    flops."""
    tx = make()
    big, grads = random_tree(0, 5, shapes=[(256, 64), (300,)])
    compiled = jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(big), big).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    assert cost["flops"] >= 1000
    assert set(_guard_shapes(compiled.as_text())) == {"f32[1024]"}
    # A call over fewer elements is cheap for XLA too, and keeps a one-element guard.
    small, grads = random_tree(0, 5, shapes=[(3,), (2, 4)])
    text = jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(small), small).compile().as_text()
    assert set(_guard_shapes(text)) == {"f32[1]"}


@pytest.mark.parametrize("make", [fromax.fromage, functools.partial(fromax.adamw, 1e-2)], ids=["fromage", "adamw"])
def test_transposed_leaves_keep_their_elements_in_place(make):
    """Layouts are left to XLA: leaves that XLA computes through transposes (params and grads of
    different physical origin) still meet element for element in the kernel."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((3, 5, 4)), jnp.float32)
    b = jnp.asarray(rng.standard_normal((6, 7)), jnp.float32)

    def train(tx, a, b, x):
        params = {"a": jnp.transpose(a, (2, 0, 1)) * 1.5, "b": b.T + 0.1}
        grads = {"a": jnp.transpose(a * x, (2, 0, 1)) + jnp.sin(params["a"]), "b": (b @ b.T @ b).T * x}
        state = tx.init(params)
        for _ in range(2):
            params, state = fromax.step(tx, grads, state, params)
        return params

    ours = jax.jit(functools.partial(train, make(backend="ffi")))(a, b, jnp.float32(0.7))
    ref = jax.jit(functools.partial(train, make(backend="xla")))(a, b, jnp.float32(0.7))
    for k in ours:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-5, atol=1e-6)
