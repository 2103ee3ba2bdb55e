"""fromax with flax NNX: `nnx.Optimizer(model, fromax.fromage(...))`, the drop-in optax way.

    pip install 'fromax[examples]' && python examples/flax_nnx.py

An MLP on scikit-learn's digits, Fromage at its default learning rate. nnx.Optimizer calls the
transformation's optax `update` (fromax's kernels behind it) and applies the increments.
"""

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


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def main(epochs: int = 20, batch: int = 200):
    x, y = load_digits(return_X_y=True)
    x, y = jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y)
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, fromax.fromage(learning_rate=0.01), wrt=nnx.Param)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x_train), batch):
            losses.append(float(train_step(model, optimizer, x_train[i:i + batch], y_train[i:i + batch])))
    accuracy = float(jnp.mean(jnp.argmax(model(x_test), -1) == y_test))
    print(f"flax NNX + fromax.fromage(0.01): loss {losses[0]:.3f} -> {losses[-1]:.4f}, test accuracy {100 * accuracy:.1f} %")
    return losses[0], losses[-1], accuracy


if __name__ == "__main__":
    main()
