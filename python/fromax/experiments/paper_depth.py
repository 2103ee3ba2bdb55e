"""paper-depth: Fromage's depth experiment (Bernstein et al. 2020, Figure 3 left) with the paper's protocol.

What the paper's code (``classify-mnist/depth.ipynb``) does, on scikit-learn's digits instead of MNIST:

* MLPs of ``depth`` hidden Linear+ReLU layers of width 64 (the input dimension, as the paper's width
  was MNIST's 784; ``--width`` for a wider run) and a final Linear to 10 classes, **PyTorch's default
  initialisation** (weights and biases uniform in +-1/sqrt(fan_in): Kaiming-uniform with a=sqrt(5);
  biases non-zero), cross-entropy, batch 250, the learning rate x0.95 per epoch;
* depths 1-10, 15, 20, ..., 50; SGD with momentum 0.9 and without at {1, 0.1, 0.01}, Fromage at
  {0.1, 0.01, 0.001}, Adam at {0.01, 0.001, 0.0001};
* the metric: final **training** accuracy (test accuracy reported beside it).

The hidden layers (all width x width when the width is 64) are one stacked leaf run by ``lax.scan``,
so a compile does not grow with depth, and Fromage takes per-layer norms through ``stacked_axes``. Each
(optimizer, depth) is one jitted program training its three learning rates side by side (``vmap``).

    python -m fromax.demo paper-depth [--out fromax_paper_depth.png] [--epochs 100] [--width 64]
"""

from __future__ import annotations

import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax
from fromax.experiments import _common as c

DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 35, 40, 45, 50)
BATCH = 250
DECAY = 0.95  # per epoch
TRAINS = 0.9  # "trains": final training accuracy at least this


def _hidden_layers(path, leaf) -> int | None:
    """Fromage's per-layer norms: the stacked hidden layers' axis 0 indexes layers."""
    del leaf
    return 0 if path[0].key == "hidden" else None


# name -> (learning rates, the default one (None: no default), factory(schedule))
OPTIMIZERS: dict[str, tuple[tuple[float, ...], float | None, Callable]] = {
    "SGD": ((1.0, 0.1, 0.01), None, lambda lr: optax.sgd(lr)),
    "SGD+momentum": ((1.0, 0.1, 0.01), None, lambda lr: optax.sgd(lr, momentum=0.9)),
    "Fromage": ((0.1, 0.01, 0.001), 0.01, lambda lr: fromax.fromage(lr, stacked_axes=_hidden_layers)),
    "Adam": ((0.01, 0.001, 0.0001), 0.001, lambda lr: optax.adam(lr)),
}


def split(seed: int = 0, test_fraction: float = 0.25) -> tuple[c.Split, c.Split]:
    """digits, shuffled once: 75 % train (1,348 images: 5 batches of 250 per epoch), 25 % test."""
    train, val, test = c.digits(seed)
    x = np.concatenate([train.x, val.x, test.x])
    y = np.concatenate([train.y, val.y, test.y])
    n = len(x) - int(round(test_fraction * len(x)))
    return c.Split(x[:n], y[:n]), c.Split(x[n:], y[n:])


def init_torch_mlp(key: jax.Array, depth: int, width: int, n_in: int = 64, n_out: int = 10, init: str = "torch") -> dict:
    """PyTorch's ``nn.Linear`` default initialisation: W and b uniform in +-1/sqrt(fan_in).

    ``first`` maps the input to the width when they differ (else it is the first stacked layer);
    ``hidden`` holds the remaining width x width layers stacked on axis 0; ``out`` is the classifier.
    ``init="he"`` is the old ``depth`` experiment's instead: W normal with variance 2/fan_in, b = 0.
    """
    def linear(k, m, n, stack=()):
        kw, kb = jax.random.split(k)
        if init == "he":
            return {"w": jax.random.normal(kw, (*stack, m, n)) * math.sqrt(2.0 / m), "b": jnp.zeros((*stack, n))}
        bound = 1.0 / math.sqrt(m)
        return {"w": jax.random.uniform(kw, (*stack, m, n), minval=-bound, maxval=bound),
                "b": jax.random.uniform(kb, (*stack, n), minval=-bound, maxval=bound)}

    k_first, k_hidden, k_out = jax.random.split(key, 3)
    params = {}
    stacked = depth
    if n_in != width:
        params["first"] = linear(k_first, n_in, width)
        stacked -= 1
    params["hidden"] = linear(k_hidden, width, width, (stacked,))
    params["out"] = linear(k_out, width, n_out)
    return params


def torch_mlp(params: dict, x: jax.Array) -> jax.Array:
    if "first" in params:
        x = jax.nn.relu(x @ params["first"]["w"] + params["first"]["b"])

    def layer(h, wb):
        w, b = wb
        return jax.nn.relu(h @ w + b), None

    x, _ = jax.lax.scan(layer, x, (params["hidden"]["w"], params["hidden"]["b"]))
    return x @ params["out"]["w"] + params["out"]["b"]


def _trainer(make: Callable, steps_per_epoch: int, decay: float = DECAY) -> Callable:
    """jit(vmap over learning rates) of a whole training run: epochs of `lax.scan`-ed steps."""

    def loss_fn(p, x, y):
        return c.cross_entropy(torch_mlp(p, x), y)

    def one(lr0, params, xs, ys, train_x, train_y, test_x, test_y):
        schedule = lambda count: lr0 * decay ** (count // steps_per_epoch)  # noqa: E731
        tx = make(schedule)

        def step(carry, batch):
            p, s = carry
            loss, g = jax.value_and_grad(loss_fn)(p, *batch)
            updates, s = tx.update(g, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), (xs, ys))

        def accuracy(x, y):
            return jnp.mean(jnp.argmax(torch_mlp(params, x), -1) == y)

        return losses.reshape(-1, steps_per_epoch).mean(1), accuracy(train_x, train_y), accuracy(test_x, test_y)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None, None, None, None)))


def run(out: str = "fromax_paper_depth.png", small: bool = False, seed: int = 0, epochs: int | None = None,
        width: int = 64, depths: tuple[int, ...] | None = None, batch: int = BATCH, decay: float = DECAY,
        init: str = "torch") -> dict:
    """The protocol above; ``epochs``, ``width``, ``depths``, ``batch``, ``decay`` (1 = none) and
    ``init`` ("torch" or "he") change one thing at a time, e.g. to take the old set-up apart."""
    c.need_extras()
    if init not in ("torch", "he"):
        raise ValueError(f"paper-depth: init must be 'torch' or 'he', got {init!r}")
    train, test = split(seed)
    epochs = epochs or (2 if small else 100)
    depths = depths or ((1, 4) if small else DEPTHS)
    steps = len(train.x) // batch
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(len(train.x))[: steps * batch] for _ in range(epochs)]).reshape(-1, batch)
    xs, ys = jnp.asarray(train.x[order]), jnp.asarray(train.y[order])
    print(f"paper depth study: digits ({len(train.x)} train / {len(test.x)} test), width {width}, batch {batch} "
          f"({steps} steps per epoch), {epochs} epochs, lr x{decay:g} per epoch, "
          f"{'PyTorch' if init == 'torch' else 'He (zero biases)'} init; "
          f"jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    results: dict[str, dict[float, dict[int, tuple[float, float, float]]]] = {}
    for name, (lrs, _, make) in OPTIMIZERS.items():
        trainer = _trainer(make, steps, decay)
        results[name] = {lr: {} for lr in lrs}
        for depth in depths:
            start = time.perf_counter()
            params = init_torch_mlp(jax.random.PRNGKey(seed), depth, width, init=init)
            losses, train_acc, test_acc = trainer(jnp.asarray(lrs, jnp.float32), params, xs, ys, train.x, train.y,
                                                  test.x, test.y)
            losses, train_acc, test_acc = np.asarray(losses), np.asarray(train_acc), np.asarray(test_acc)
            for i, lr in enumerate(lrs):
                results[name][lr][depth] = (float(train_acc[i]), float(test_acc[i]), float(losses[i, -1]))
            accs = "  ".join(f"lr {lr:g}: {train_acc[i]:.3f}" for i, lr in enumerate(lrs))
            print(f"  {name:13s} depth {depth:2d}  train acc  {accs}  ({time.perf_counter() - start:.1f} s)")
    return _report(results, depths, out, width, epochs)


def _deepest(by_depth: dict[int, tuple[float, float, float]]) -> int:
    """The deepest depth whose final training accuracy reaches TRAINS (0 if none)."""
    return max((d for d, (acc, _, _) in by_depth.items() if acc >= TRAINS), default=0)


def _best_lr(by_lr: dict[float, dict[int, tuple[float, float, float]]]) -> float:
    """The learning rate with the best mean final training accuracy over the depths (NaN counts 0)."""
    return max(by_lr, key=lambda lr: np.mean([a if a == a else 0.0 for a, _, _ in by_lr[lr].values()]))


def _report(results: dict, depths: tuple[int, ...], out: str, width: int, epochs: int) -> dict:
    header = ["depth"] + [f"{name} {lr:g}" for name, by_lr in results.items() for lr in by_lr]
    rows = [[d] + [results[name][lr][d][0] for name, by_lr in results.items() for lr in by_lr] for d in depths]
    table = c.print_table(f"final training accuracy by depth (width {width}, {epochs} epochs)", header, rows)
    test_rows = [[d] + [results[name][lr][d][1] for name, by_lr in results.items() for lr in by_lr] for d in depths]
    test_table = c.print_table("final test accuracy by depth", header, test_rows)
    best_lr = {name: _best_lr(by_lr) for name, by_lr in results.items()}
    summary = []
    for name, by_lr in results.items():
        best = best_lr[name]
        default = OPTIMIZERS[name][1]
        summary.append([name, f"{best:g}", _deepest(by_lr[best]),
                        f"{default:g}" if default else "-", _deepest(by_lr[default]) if default else "-",
                        max(_deepest(v) for v in by_lr.values())])
    deepest = c.print_table(f"deepest network trained (final training accuracy >= {TRAINS:.0%})",
                            ["optimizer", "best lr", "deepest at best lr", "default lr", "deepest at default lr",
                             "deepest at any lr"], summary)
    plt, fig, (ax,) = c.figure(1, 6.4, 4.4)
    for (name, by_lr), color in zip(results.items(), ("tab:gray", "tab:green", "tab:red", "tab:blue")):
        best = best_lr[name]
        ax.plot(depths, [by_lr[best][d][0] for d in depths], marker="o", color=color, label=f"{name} (best lr {best:g})")
        default = OPTIMIZERS[name][1]
        if default and default != best:
            ax.plot(depths, [by_lr[default][d][0] for d in depths], marker=".", linestyle="--", color=color,
                    label=f"{name} (default lr {default:g})")
    ax.axhline(TRAINS, color="black", linewidth=0.5)
    ax.set(xlabel="number of hidden layers", ylabel="final training accuracy", ylim=(0, 1.02),
           title=f"digits MLP, width {width}: training accuracy vs depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    c.save(plt, fig, out)
    return {"results": results, "table": table, "test_table": test_table, "deepest": deepest}
