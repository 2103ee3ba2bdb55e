"""Eager (un-jitted) steps compile once per optimizer configuration and never again for the same
shapes: plain, in a chain, under inject_hyperparams and in flax's nnx.Optimizer (fromax._eager);
and they compute what the jitted step computes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
from family_cases import CASES, INJECTABLE as FAMILY_INJECTABLE

COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kwargs: COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
)

NAMES = ["fromage", *CASES]


def make(name: str, backend: str = "ffi") -> optax.GradientTransformation:
    return fromax.fromage(0.01, backend=backend) if name == "fromage" else CASES[name][0](backend)


def mlp_params() -> dict:
    rng = np.random.default_rng(0)
    return {"w1": jnp.asarray(rng.normal(size=(8, 16)), jnp.float32), "b1": jnp.zeros(16, jnp.float32),
            "w2": jnp.asarray(rng.normal(size=(16, 3)), jnp.float32), "b2": jnp.zeros(3, jnp.float32)}


def grads_for(params: dict, k: int) -> dict:
    return jax.tree.map(lambda p: jnp.sin(p + k) + 0.1 * k, params)


def compiles_after_warmup(step, params, state, steps: int = 4) -> int:
    """Compilations during the steps after the first two (which may compile)."""
    for k in range(2):
        params, state = step(grads_for(params, k), state, params)
    before = len(COMPILES)
    for k in range(2, 2 + steps):
        params, state = step(grads_for(params, k), state, params)
        jax.block_until_ready(params)
    return len(COMPILES) - before


def contract(tx):
    def step(g, s, p):
        u, s = tx.update(g, s, p, value=jnp.float32(1.0))
        return optax.apply_updates(p, u), s

    return step


def fused(tx):
    return lambda g, s, p: fromax.step(tx, g, s, p, value=jnp.float32(1.0))


@pytest.mark.parametrize("name", NAMES)
def test_eager_steps_never_recompile(name):
    params = mlp_params()
    for wrap in (lambda tx: tx, lambda tx: optax.chain(optax.clip_by_global_norm(1.0), tx)):
        tx = optax.with_extra_args_support(wrap(make(name)))
        for step in (contract(tx), fused(tx)):
            assert compiles_after_warmup(step, params, tx.init(params)) == 0


INJECTABLE = {"fromage": (fromax.fromage, {"learning_rate": 0.01}), **FAMILY_INJECTABLE}


@pytest.mark.parametrize("name", list(INJECTABLE))
def test_eager_inject_hyperparams_never_recompiles(name):
    """inject_hyperparams rebuilds the optimizer on every step from array hyperparameters: the
    compiled program is keyed by the optimizer's configuration, the arrays are its arguments."""
    factory, hyper = INJECTABLE[name]
    params = mlp_params()
    tx = optax.inject_hyperparams(functools.partial(factory, backend="ffi"))(**hyper)
    state = tx.init(params)
    for step in (contract(tx), fused(tx)):
        assert compiles_after_warmup(step, params, state) == 0
    # A new learning rate is data: applied, and still no compilation.
    before = len(COMPILES)
    moved = []
    for lr in (hyper["learning_rate"], hyper["learning_rate"] * 1e-3):
        state.hyperparams["learning_rate"] = jnp.asarray(lr, state.hyperparams["learning_rate"].dtype)
        new, _ = contract(tx)(grads_for(params, 3), state, params)
        moved.append(np.asarray(new["w1"]))
    assert len(COMPILES) == before
    # COCOB's learning rate scales its gradient, and its step is scale-free; the hypergradient
    # optimizers take theirs as the initial value of the one they adapt.
    if name not in ("cocob", "hypergradient_adamw", "auto_hypergradient_adamw"):
        assert not np.array_equal(moved[0], moved[1])


@pytest.mark.parametrize("name", ["fromage", "adamw", "lamb", "dog", "prodigy", "mechanize", "schedule_free_adamw"])
def test_eager_nnx_optimizer_never_recompiles(name):
    from flax import nnx

    model = nnx.Linear(8, 3, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, make(name), wrt=nnx.Param)
    x = jnp.ones((4, 8))

    def loss(model):
        return jnp.mean(model(x) ** 2)

    for _ in range(2):
        optimizer.update(model, nnx.grad(loss)(model))
    before = len(COMPILES)
    for _ in range(3):
        optimizer.update(model, nnx.grad(loss)(model))
    assert len(COMPILES) == before


@pytest.mark.parametrize("name", NAMES)
def test_eager_step_equals_the_jitted_step(name):
    """The fused step: the same kernels, the same bits. The optax contract: eagerly, apply_updates
    adds the increment in an operation of its own, where XLA's jitted loop computes p + u in the
    same loop as u (contracted to a fused multiply-add): an ulp apart, as for optax's own steps."""
    params = mlp_params()
    tx = optax.with_extra_args_support(make(name))
    for step, exact in ((contract(tx), False), (fused(tx), True)):
        state, p_eager, p_jit, s_jit = tx.init(params), params, params, tx.init(params)
        jitted = jax.jit(step)
        for k in range(3):
            p_eager, state = step(grads_for(params, k), state, p_eager)
            p_jit, s_jit = jitted(grads_for(params, k), s_jit, p_jit)
        for a, b in zip(jax.tree.leaves(p_eager), jax.tree.leaves(p_jit)):
            if exact:
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_eager_configurations_share_one_program():
    """Two optimizers built with the same arguments run one compiled step; another argument
    value is another configuration."""
    params = mlp_params()
    runs = [fromax.adamw(1e-3), fromax.adamw(1e-3), fromax.adamw(2e-3)]
    compiled = []
    for tx in runs:
        before = len(COMPILES)
        tx.update(grads_for(params, 0), tx.init(params), params)
        compiled.append(len(COMPILES) - before)
    assert compiled[1] == 0 and compiled[2] >= 1


def test_eager_steps_read_the_users_functions_on_every_call():
    """A function of the user's may read Python state (here a learning rate set between steps, as
    fromax.optim's schedulers do): an eager step calls it every time, as optax's does, instead of
    freezing what the first call returned into a cached program; and it still compiles only once."""
    lr = [1e-2]
    schedule = lambda count: lr[0]  # noqa: E731
    params = mlp_params()
    cases = {
        "fromax.adamw(schedule)": (fromax.adamw(schedule), optax.adamw(schedule)),
        "chain(scale_by_schedule, fromax.adamw)": (optax.chain(optax.scale_by_schedule(schedule), fromax.adamw(1e-2)),
                                                   optax.chain(optax.scale_by_schedule(schedule), optax.adamw(1e-2))),
        "chain(fromax.lamb, scale_by_schedule)": (optax.chain(fromax.lamb(1e-2), optax.scale_by_schedule(schedule)),
                                                  optax.chain(optax.lamb(1e-2), optax.scale_by_schedule(schedule))),
    }
    for name, (ours, theirs) in cases.items():
        for step in (contract(optax.with_extra_args_support(ours)), fused(optax.with_extra_args_support(ours))):
            lr[0] = 1e-2
            p_ours, s_ours, p_theirs, s_theirs = params, ours.init(params), params, theirs.init(params)
            for k, rate in enumerate((1e-2, 1e-2, 1e-5, 1e-5)):
                lr[0] = rate
                before = len(COMPILES)
                p_ours, s_ours = step(grads_for(params, k), s_ours, p_ours)
                if k >= 2:
                    assert len(COMPILES) == before, name
                u, s_theirs = theirs.update(grads_for(params, k), s_theirs, p_theirs)
                p_theirs = optax.apply_updates(p_theirs, u)
                for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs)):
                    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, err_msg=f"{name} step {k}")


def test_user_functions_are_not_frozen_into_a_cached_program():
    assert fromax.adamw(optax.cosine_decay_schedule(1e-3, 100)).update.fromax_eager_cached
    assert fromax.mechanize(fromax.adamw(1e-3)).update.fromax_eager_cached
    assert not fromax.adamw(lambda count: 1e-3).update.fromax_eager_cached
    assert not fromax.mechanize(fromax.adamw(lambda count: 1e-3)).update.fromax_eager_cached
    assert fromax.lars(0.1, weight_decay_mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)).update.fromax_eager_cached
