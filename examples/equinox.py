"""fromax with Equinox: the fused in-place `fromax.step` inside `eqx.filter_jit`.

    pip install 'fromax[examples]' && python examples/equinox.py

An `eqx.nn.MLP` on scikit-learn's digits with Fromage at its default learning rate. The model's
arrays are split from its static parts, the fused step writes the new weights (in place: the model
and optimizer state are donated), and the two are combined back.
"""

import os
import sys

# Run as a script, this file's folder is sys.path[0], where this file would shadow the equinox
# package it is named after: drop the folder before importing.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fromax  # noqa: E402

tx = fromax.fromage(learning_rate=0.01)


def loss_fn(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()


@eqx.filter_jit(donate="all")
def train_step(model, opt_state, x, y):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    params, opt_state = fromax.step(tx, grads, opt_state, params)
    return eqx.combine(params, static), opt_state, loss


def main(epochs: int = 20, batch: int = 200):
    x, y = load_digits(return_X_y=True)
    x, y = jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y)
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    model = eqx.nn.MLP(64, 10, width_size=64, depth=1, key=jax.random.PRNGKey(0))
    opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch):
            model, opt_state, loss = train_step(model, opt_state, x_train[i:i + batch], y_train[i:i + batch])
            losses.append(float(loss))
    accuracy = float(jnp.mean(jnp.argmax(jax.vmap(model)(x_test), -1) == y_test))
    print(f"equinox + fromax.step (fused): loss {losses[0]:.3f} -> {losses[-1]:.4f}, test accuracy {100 * accuracy:.1f} %")
    return losses[0], losses[-1], accuracy


if __name__ == "__main__":
    main()
