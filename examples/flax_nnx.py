"""fromax with flax NNX: `nnx.Optimizer(model, fromax.fromage(...))`, the drop-in optax way.

    pip install 'fromax[examples]' && python examples/flax_nnx.py

An MLP on scikit-learn's digits, Fromage at its default learning rate. nnx.Optimizer calls the
transformation's optax `update` (fromax's reductions behind it) and applies the increments; the
`fused_update` recipe below is the same step through `fromax.step` instead, which writes the new
parameters and state in place (donate the model and the optimizer to `nnx.jit`). The example trains
with the recipe when run with `--fused`.
"""

import sys

import jax.numpy as jnp
import optax
from flax import nnx
from sklearn.datasets import load_digits

import fromax


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, width: int = 64):
        self.l1 = nnx.Linear(64, width, rngs=rngs)
        self.l2 = nnx.Linear(width, 10, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


def fused_update(optimizer: nnx.Optimizer, model: nnx.Module, grads) -> None:
    """``optimizer.update(model, grads)`` through the fused, in-place ``fromax.step``: the new
    parameters and optimizer state are written over the old ones (under ``nnx.jit`` with the model
    and the optimizer donated), with no increment to add."""
    params = nnx.as_pure(nnx.state(model, optimizer.wrt))
    grads = nnx.as_pure(nnx.state(grads, optimizer.wrt))
    new_params, new_opt_state = fromax.step(optimizer.tx, grads, nnx.as_pure(optimizer.opt_state), params)
    nnx.update(model, new_params)
    nnx.update(optimizer.opt_state, nnx.state(new_opt_state))
    optimizer.step[...] += 1


def loss_and_grads(model, x, y):
    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    return nnx.value_and_grad(loss_fn)(model)


@nnx.jit
def train_step(model, optimizer, x, y):
    loss, grads = loss_and_grads(model, x, y)
    optimizer.update(model, grads)
    return loss


@nnx.jit(donate_argnums=(0, 1))
def fused_train_step(model, optimizer, x, y):
    loss, grads = loss_and_grads(model, x, y)
    fused_update(optimizer, model, grads)
    return loss


def main(epochs: int = 20, batch: int = 200, fused: bool = False):
    x, y = load_digits(return_X_y=True)
    x, y = jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y)
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, fromax.fromage(learning_rate=0.01), wrt=nnx.Param)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch):
            step = fused_train_step if fused else train_step
            losses.append(float(step(model, optimizer, x_train[i:i + batch], y_train[i:i + batch])))
    accuracy = float(jnp.mean(jnp.argmax(model(x_test), -1) == y_test))
    how = "fused_update (fromax.step)" if fused else "nnx.Optimizer.update"
    print(f"flax NNX + fromax.fromage(0.01), {how}: loss {losses[0]:.3f} -> {losses[-1]:.4f}, test accuracy {100 * accuracy:.1f} %")
    return losses[0], losses[-1], accuracy


if __name__ == "__main__":
    main(fused="--fused" in sys.argv)
