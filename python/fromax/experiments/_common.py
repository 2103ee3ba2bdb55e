"""What the experiments share: the data (digits, and the text that ships with CPython), an MLP, a
training loop that runs an epoch per jitted `lax.scan`, a progress bar, a table and a plot.

Everything is seeded: the same command gives the same numbers on the same machine.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax


def need_extras() -> None:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:  # pragma: no cover - message for users without the extra
        sys.exit("the fromax experiments need scikit-learn and matplotlib: pip install 'fromax[demo]'")


# ---- data -------------------------------------------------------------------------------------------
class Split(NamedTuple):
    x: np.ndarray
    y: np.ndarray


def digits(seed: int = 0) -> tuple[Split, Split, Split]:
    """scikit-learn's digits (1,797 8x8 images), shuffled once: 60 % train, 20 % validation, 20 % test."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    return Split(x[order[:a]], y[order[:a]]), Split(x[order[a:b]], y[order[a:b]]), Split(x[order[b:]], y[order[b:]])


def python_docs_text() -> bytes:
    """The English text of CPython's own help pages (``pydoc_data.topics``), as UTF-8 bytes, topics in
    sorted order: a fixed corpus every Python install has."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics)).encode("utf-8")


# ---- the MLP ------------------------------------------------------------------------------------------
def init_mlp(key: jax.Array, depth: int, width: int, n_in: int = 64, n_out: int = 10) -> dict:
    """``depth`` linear layers (``depth - 1`` hidden ReLU layers of ``width``), He-initialised, no
    normalisation: depth alone decides how hard it is to train."""
    sizes = [n_in] + [width] * (depth - 1) + [n_out]
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        params[f"layer{i:02d}"] = {"w": jax.random.normal(sub, (m, n)) * math.sqrt(2.0 / m), "b": jnp.zeros(n)}
    return params


def mlp(params: dict, x: jax.Array) -> jax.Array:
    names = sorted(params)
    for i, name in enumerate(names):
        x = x @ params[name]["w"] + params[name]["b"]
        if i < len(names) - 1:
            x = jax.nn.relu(x)
    return x


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# ---- training -----------------------------------------------------------------------------------------
def make_epoch(tx: optax.GradientTransformation, loss_fn: Callable) -> Callable:
    """A jitted run of one epoch's batches (a `lax.scan` of the fused `fromax.step`; params and
    state donated). The loss goes to the step as ``value`` (MoMo uses it; the others ignore it)."""

    def body(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        params, state = fromax.step(tx, grads, state, params, value=loss)
        return (params, state), loss

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, state, *batches):
        (params, state), losses = jax.lax.scan(body, (params, state), batches)
        return params, state, losses

    return epoch


class Progress:
    """One line per run: ``name [#####     ] 12/30  <status>``, redrawn in place."""

    def __init__(self, name: str, total: int, width: int = 24):
        self.name, self.total, self.width, self.start = name, total, width, time.perf_counter()
        self.status = ""

    def update(self, done: int, status: str = "") -> None:
        self.status = status
        bar = "#" * int(self.width * done / max(self.total, 1))
        print(f"\r  {self.name:34s} [{bar:<{self.width}s}] {done:4d}/{self.total}  {status}", end="", flush=True)

    def close(self) -> None:
        print(f"  ({time.perf_counter() - self.start:.1f} s)")


def train_classifier(name: str, tx, params: dict, train: Split, evals: dict[str, Split], epochs: int, batch: int,
                     seed: int, eval_params: Callable | None = None) -> dict:
    """Train the MLP; returns per-epoch train loss and, per eval split, loss and accuracy (and the
    final params). Diverged runs (non-finite loss) stop early and keep their NaNs. ``eval_params(state,
    params)`` gives the point to evaluate when it is not the trained one (Schedule-Free's average)."""
    loss_fn = lambda p, x, y: cross_entropy(mlp(p, x), y)  # noqa: E731
    epoch_fn = make_epoch(tx, loss_fn)
    @jax.jit
    def evaluate(p, x, y):
        logits = mlp(p, x)
        return cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)

    params = jax.tree.map(jnp.copy, params)
    state = tx.init(params)
    rng = np.random.default_rng(seed)
    steps = len(train.x) // batch
    history: dict[str, Any] = {"train_loss": []}
    for split in evals:
        history[f"{split}_loss"], history[f"{split}_acc"] = [], []
    bar = Progress(name, epochs)
    for e in range(epochs):
        idx = rng.permutation(len(train.x))[: steps * batch].reshape(steps, batch)
        params, state, losses = epoch_fn(params, state, jnp.asarray(train.x[idx]), jnp.asarray(train.y[idx]))
        history["train_loss"].append(float(jnp.mean(losses)))
        at = params if eval_params is None else eval_params(state, params)
        for split, data in evals.items():
            loss, acc = evaluate(at, data.x, data.y)
            history[f"{split}_loss"].append(float(loss))
            history[f"{split}_acc"].append(float(acc))
        first = next(iter(evals))
        bar.update(e + 1, f"train {history['train_loss'][-1]:.4f}  {first} acc {history[f'{first}_acc'][-1]:.3f}")
        if not math.isfinite(history["train_loss"][-1]):
            break
    bar.close()
    history["params"] = params
    return history


def final(history: dict, key: str) -> float:
    values = history[key]
    return values[-1] if values else float("nan")


# ---- output -------------------------------------------------------------------------------------------
def print_table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table (what the README quotes), printed and returned."""
    def cell(v):
        if isinstance(v, float):
            return "diverged" if not math.isfinite(v) else f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    text = f"\n{title}\n\n" + "\n".join(lines)
    print(text)
    return text


def figure(ncols: int, width: float = 5.0, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return plt, fig, axes[0]


def save(plt, fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nwrote {path}")
