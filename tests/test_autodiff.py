"""jax.grad / jax.jvp through engine optimizer steps (learning to learn, hypergradients of an outer
loss): the kernels' derivatives are the reference math's, so both backends must agree."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest

import fromax
from helpers import ENGINE_OPTIMIZERS, random_tree
from helpers import assert_trees_close_at_largest_scale as _close

OPTIMIZERS = sorted(ENGINE_OPTIMIZERS)
SHAPES = [(5,), (70, 1000), (), (3, 3, 2, 4)]


def _unrolled_loss(lr, grads, params, *, name, backend, delta, steps=3):
    """Outer loss after `steps` optimizer steps from params (the same grads each step)."""
    tx = ENGINE_OPTIMIZERS[name](lr, backend)
    state = tx.init(params)
    for _ in range(steps):
        if delta:
            updates, state = tx.update(grads, state, params)
            params = jax.tree.map(jnp.add, params, updates)
        else:
            params, state = fromax.step(tx, grads, state, params)
    return sum(jnp.sum(jnp.cos(p) * jnp.arange(p.size).reshape(p.shape) / max(p.size, 1)) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("delta", [False, True], ids=["fused", "optax_contract"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_through_steps_equals_reference(name, delta):
    params, grads = random_tree(0, 8, zero_every=3, shapes=SHAPES)
    loss = functools.partial(_unrolled_loss, name=name, delta=delta)
    got = jax.jit(jax.grad(functools.partial(loss, backend="ffi"), argnums=(0, 1, 2)))(0.05, grads, params)
    want = jax.grad(functools.partial(loss, backend="xla"), argnums=(0, 1, 2))(0.05, grads, params)
    _close(got, want)
    assert float(jnp.abs(got[0])) > 0  # the hypergradient d loss / d lr is not trivially zero


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_jvp_through_step_equals_reference(name):
    params, grads = random_tree(1, 6, shapes=SHAPES)
    tangent = jax.tree.map(lambda x: jnp.ones_like(x) * 0.3, params)

    def f(p, backend):
        tx = ENGINE_OPTIMIZERS[name](0.1, backend)
        return fromax.step(tx, grads, tx.init(p), p)[0]

    primal, tan = jax.jit(jax.jvp, static_argnums=0)(functools.partial(f, backend="ffi"), (params,), (tangent,))
    want_primal, want_tan = jax.jvp(functools.partial(f, backend="xla"), (params,), (tangent,))
    _close(primal, want_primal, rtol=2e-5)
    _close(tan, want_tan)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_vmap_of_hypergradients_equals_a_loop(name):
    """Per-member hypergradients of a population (vmap of grad) and a grad of a vmapped loss."""
    params, grads = random_tree(2, 5, shapes=SHAPES)
    lrs = jnp.array([0.01, 0.05, 0.2])
    loss = functools.partial(_unrolled_loss, name=name, delta=False, steps=2)
    got = jax.jit(jax.vmap(jax.grad(functools.partial(loss, backend="ffi")), in_axes=(0, None, None)))(lrs, grads, params)
    want = jnp.stack([jax.grad(functools.partial(loss, backend="xla"))(lr, grads, params) for lr in lrs])
    _close(got, want)

    total = lambda backend: lambda lr: jnp.sum(jax.vmap(functools.partial(loss, backend=backend), in_axes=(0, None, None))(lr, grads, params))
    _close(jax.jit(jax.grad(total("ffi")))(lrs), jax.grad(total("xla"))(lrs))


def test_norms_are_differentiable():
    tree = {"a": jnp.arange(6.0).reshape(2, 3) - 2.0, "b": jnp.array([3.0, -4.0])}
    f = lambda t, backend: sum(jax.tree.leaves(fromax.per_tensor_norms(t, backend=backend)))
    _close(jax.grad(f)(tree, "ffi"), jax.grad(f)(tree, "xla"))
