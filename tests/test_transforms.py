"""jax.vmap (a batch of models) and jax.jit; fromax.step with other optax transformations."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
from helpers import assert_trees_close, random_tree

BATCH = 3


def _batch(tree, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.stack([x * rng.uniform(0.2, 3.0) for _ in range(BATCH)]).astype(x.dtype), tree)


@pytest.mark.parametrize("p_bound", [None, 1.0])
@pytest.mark.parametrize("delta", [False, True])
def test_vmap_over_models_equals_a_loop(p_bound, delta):
    params, grads = random_tree(4, 10, dtypes=(jnp.float32, jnp.bfloat16), zero_every=4,
                                shapes=[(5,), (70, 1000), (), (3, 3, 2, 4), (0,)])
    P, G = _batch(params, 0), _batch(grads, 1)
    lrs = jnp.array([0.01, 0.1, 0.05])  # per-model learning rates, batched too

    def one(lr, g, p, backend):
        tx = fromax.fromage(lr, p_bound=p_bound, backend=backend)
        state = tx.init(p)
        return tx.update(g, state, p)[0] if delta else fromax.step(tx, g, state, p)[0]

    batched = jax.jit(jax.vmap(functools.partial(one, backend="ffi")))(lrs, G, P)
    for i in range(BATCH):
        member = lambda t, i=i: jax.tree.map(lambda x: x[i], t)
        expected = one(lrs[i], member(G), member(P), "xla")
        assert_trees_close(member(batched), expected, rtol=2**-7, atol_rel=2**-8, scale_tree=member(P))


def test_vmap_runs_batched_kernels_not_a_loop():
    params, grads = random_tree(4, 50, shapes=[(5,), (7, 3)])
    P, G = _batch(params, 0), _batch(grads, 1)
    tx = fromax.fromage(0.01, p_bound=1.0)
    fn = jax.jit(jax.vmap(lambda g, p: fromax.step(tx, g, tx.init(p), p)))
    text = fn.lower(G, P).compile().as_text()
    calls = re.findall(r'custom_call_target="(fromax_\w+)"', text)
    # init's reduction and the step's one fused call, for all members (segments = 2), no while loop.
    assert sorted(calls) == ["fromax_fromage", "fromax_norm"]
    assert "while" not in text


def test_nested_vmap():
    params, grads = random_tree(6, 5, shapes=[(4, 3), (9,)])
    P = jax.tree.map(lambda x: jnp.stack([jnp.stack([x, 2 * x]), jnp.stack([-x, 0.5 * x])]), params)
    G = jax.tree.map(lambda x: jnp.stack([jnp.stack([x, x]), jnp.stack([3 * x, x])]), grads)
    tx_k, tx_r = fromax.fromage(0.1, backend="ffi"), fromax.fromage(0.1, backend="xla")
    run = lambda tx: jax.vmap(jax.vmap(lambda g, p: fromax.step(tx, g, tx.init(p), p)[0]))(G, P)
    assert_trees_close(run(tx_k), run(tx_r), rtol=1e-5, atol_rel=1e-6)


def test_step_falls_back_for_other_optax_transformations():
    params, grads = random_tree(8, 6)
    tx = optax.adam(1e-3)
    state = tx.init(params)
    new, _ = jax.jit(functools.partial(fromax.step, tx))(grads, state, params)
    updates, _ = tx.update(grads, state, params)
    assert_trees_close(new, optax.apply_updates(params, updates), rtol=1e-6, atol_rel=1e-7)  # jit vs eager rounding
    # Wrapped fromax transformations go through their update (still on the kernels).
    chained = optax.chain(fromax.fromage(0.01))
    new_c, _ = fromax.step(chained, grads, chained.init(params), params)
    new_f, _ = fromax.step(fromax.fromage(0.01), grads, fromax.fromage(0.01).init(params), params)
    assert_trees_close(new_c, new_f, rtol=1e-6, atol_rel=1e-7)


def test_update_contract_matches_fused_step():
    params, grads = random_tree(12, 9)
    tx = fromax.fromage(0.1, p_bound=1.0)
    state = tx.init(params)
    updates, s1 = tx.update(grads, state, params)
    fused, s2 = fromax.step(tx, grads, state, params)
    assert_trees_close(optax.apply_updates(params, updates), fused, rtol=1e-6, atol_rel=1e-7)
    assert int(s1.count) == int(s2.count) == 1
