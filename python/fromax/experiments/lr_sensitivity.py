"""lr-sensitivity: the paper's learning-rate sweep, in small.

Final validation loss of a depth-4 MLP (width 128) on scikit-learn's digits after the same number
of epochs, for learning rates 1e-4 ... 1 (half-decade steps), with Fromage, Adam and SGD: how wide
each optimizer's range of good learning rates is (the rates within 2x of its own best loss).

    python -m fromax.demo lr-sensitivity [--out fromax_lr_sensitivity.png]
"""

from __future__ import annotations

import math

import jax
import numpy as np
import optax

import fromax
from fromax.experiments import _common as c

LRS = tuple(float(f"{10 ** (k / 2):.0e}") if k % 2 else 10.0 ** (k // 2) for k in range(-8, 1))  # 1e-4, 3e-4, ..., 1
OPTIMIZERS = {"Fromage": fromax.fromage, "Adam": optax.adam, "SGD": optax.sgd}


def run(out: str = "fromax_lr_sensitivity.png", small: bool = False, seed: int = 0) -> dict:
    c.need_extras()
    lrs = (1e-3, 1e-2, 1e-1) if small else LRS
    epochs, width, depth, batch = (2, 32, 3, 64) if small else (30, 128, 4, 64)
    train, val, _ = c.digits(seed)
    print(f"lr sweep: depth-{depth} MLP (width {width}) on digits, {epochs} epochs, lrs {', '.join(f'{lr:g}' for lr in lrs)}; "
          f"jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    params = c.init_mlp(jax.random.PRNGKey(seed), depth, width)
    losses = {name: [] for name in OPTIMIZERS}
    for name, make in OPTIMIZERS.items():
        for lr in lrs:
            history = c.train_classifier(f"{name} lr={lr:g}", make(lr), params, train, {"val": val}, epochs, batch, seed)
            losses[name].append(c.final(history, "val_loss"))
    rows = [[f"{lr:g}", *(losses[name][i] for name in OPTIMIZERS)] for i, lr in enumerate(lrs)]
    table = c.print_table("final validation loss by learning rate", ["lr", *OPTIMIZERS], rows)
    # The width of each optimizer's good range: the learning rates within 2x of its own best loss.
    best = {name: min((v for v in vs if math.isfinite(v)), default=float("nan")) for name, vs in losses.items()}
    good = {name: [lr for lr, v in zip(lrs, vs) if math.isfinite(v) and v <= 2 * best[name]] for name, vs in losses.items()}
    summary = c.print_table("good range: learning rates within 2x of the optimizer's own best validation loss",
                            ["optimizer", "best loss", "good lrs", "span (decades)"],
                            [[n, best[n], ", ".join(f"{lr:g}" for lr in g) or "none", _decades(g)] for n, g in good.items()])
    plt, fig, (ax,) = c.figure(1, 6.0, 4.2)
    for name, vs in losses.items():
        ax.plot(lrs, np.where(np.isfinite(vs), vs, np.nan), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="learning rate", ylabel="final validation loss", title=f"digits, depth-{depth} MLP: lr sensitivity")
    ax.grid(alpha=0.3)
    ax.legend()
    c.save(plt, fig, out)
    return {"losses": losses, "lrs": lrs, "best": best, "good": good, "table": table + summary}


def _decades(lrs: list[float]) -> str:
    return f"{math.log10(max(lrs) / min(lrs)):.1f}" if lrs else "0"
