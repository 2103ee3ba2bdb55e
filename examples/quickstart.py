"""fromax quickstart: fit a linear regression with Fromage, both ways (optax contract and fused step).

    python examples/quickstart.py
"""

import functools

import jax
import jax.numpy as jnp
import optax

import fromax


def main():
    key_x, key_w = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(key_x, (256, 8))
    true_w = jax.random.normal(key_w, (8, 1))
    y = x @ true_w + 0.5

    params = {"w": jnp.full((8, 1), 0.1), "b": jnp.zeros(1)}  # a zero bias: Fromage still moves it
    loss_fn = lambda p: jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    tx = fromax.fromage(learning_rate=optax.cosine_decay_schedule(0.1, 300, alpha=0.05))
    state = tx.init(params)

    # The optax contract: update -> apply_updates.
    grads = jax.grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)

    # The fused step, in place (params and state donated).
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, state = fromax.step(tx, grads, state, params)
        return params, state, loss

    first = float(loss_fn(params))
    for _ in range(300):
        params, state, loss = train_step(params, state)
    print(f"loss {first:.4f} -> {float(loss):.5f}; per-tensor norms {jax.tree.map(float, fromax.per_tensor_norms(params))}")
    return first, float(loss)


if __name__ == "__main__":
    main()
