"""fromax.optim with brainstate: an MLP on scikit-learn's digits, Fromage at its default rate, then
Adam under a StepLR schedule, in a `brainstate.transform.jit` train step (one compilation each).

    pip install 'fromax[brainstate]' scikit-learn && python examples/brainstate.py
"""

import os
import sys

# Run as a script, this file's folder is sys.path[0], where this file would shadow the brainstate
# package it is named after: drop the folder before importing.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import brainstate  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fromax.optim as optim  # noqa: E402


class MLP(brainstate.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = brainstate.nn.Linear(64, 64)
        self.l2 = brainstate.nn.Linear(64, 10)

    def __call__(self, x):
        return self.l2(jax.nn.relu(self.l1(x)))


def train(make_optimizer, epochs: int = 30, seed: int = 0):
    """Train a fresh MLP; returns (first loss, last loss, test accuracy, compilations)."""
    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x / 16.0, jnp.float32)
    y = jnp.asarray(y)
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    brainstate.random.seed(seed)
    model = MLP()
    params = model.states(brainstate.ParamState)
    opt = make_optimizer()
    opt.register_trainable_weights(params)
    compilations = []

    @brainstate.transform.jit
    def train_step(xb, yb):
        compilations.append(1)  # runs only while tracing
        loss_fn = lambda: optax.softmax_cross_entropy_with_integer_labels(model(xb), yb).mean()  # noqa: E731
        grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
        opt.step(grads)
        return loss

    losses = []
    for _ in range(epochs):
        for i in range(0, 1400, 200):
            losses.append(float(train_step(x_train[i:i + 200], y_train[i:i + 200])))
        opt.lr.step()  # one scheduler step per epoch (a ConstantLR when lr is a float)
    accuracy = float(jnp.mean(jnp.argmax(model(x_test), -1) == y_test))
    return losses[0], losses[-1], accuracy, len(compilations)


def main(epochs: int = 30):
    runs = {
        "Fromage(lr=0.01)": lambda: optim.Fromage(lr=0.01),
        "Adam(StepLR(1e-2, 10, 0.5))": lambda: optim.Adam(lr=optim.StepLR(base_lr=1e-2, step_size=10, gamma=0.5)),
    }
    results = {}
    for name, make in runs.items():
        first, last, acc, n = train(make, epochs)
        results[name] = (first, last, acc, n)
        print(f"{name:30s} loss {first:.3f} -> {last:.4f}  test accuracy {100 * acc:.1f} %  ({n} compilation)")
    return results


if __name__ == "__main__":
    main()
