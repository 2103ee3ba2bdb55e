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


@pytest.mark.parametrize("n_leaves", [1, 3, 40, 600])
@pytest.mark.parametrize("mixed", [False, True])
def test_custom_call_count_is_constant(n_leaves, mixed):
    dtypes = (jnp.float32, jnp.bfloat16, jnp.float16) if mixed else (jnp.float32,)
    params, grads = random_tree(0, n_leaves, dtypes=dtypes, shapes=[(4,), (2, 3), ()])
    for p_bound in (None, 1.0):
        tx = fromax.fromage(p_bound=p_bound)  # backend="auto" picks the kernel on CPU
        state = tx.init(params)
        fused = jax.jit(functools.partial(fromax.step, tx)).lower(grads, state, params).compile().as_text()
        update = jax.jit(tx.update).lower(grads, state, params).compile().as_text()
        # One fused call per accumulator group (f32/bf16/f16 share the f32 group).
        assert _fromax_calls(fused) == ["fromax_fromage"]
        assert _fromax_calls(update) == ["fromax_fromage"]
    init = jax.jit(fromax.fromage(p_bound=1.0).init).lower(params).compile().as_text()
    assert _fromax_calls(init) == ["fromax_sums"]


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
    assert attrs.strip() == "delta = 0 : i64"  # structure only; lr and p_bound are operands


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


def test_eager_calls_reuse_the_compiled_kernel_call():
    from fromax import _engine

    params, grads = random_tree(3, 5)
    tx = fromax.fromage(0.05, backend="ffi")
    state = tx.init(params)
    tx.update(grads, state, params)  # eager: one jitted program per engine call, compiled once
    program = _engine._differentiable(_engine._fromage_kernel(True), _engine._fromage_reference(True)).compiled
    size = program._cache_size()
    for _ in range(3):
        tx.update(grads, state, params)
    assert size >= 1 and program._cache_size() == size  # reused, never recompiled
