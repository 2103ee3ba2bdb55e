"""depth: the paper's MLP depth study, in small.

MLPs of depth 2, 4, 8, 16 and 32 (ReLU, width 128, no normalisation) on scikit-learn's digits:
Fromage at its default learning rate (0.01) against Adam and SGD at their defaults (1e-3, as
braintools.optim / fromax.optim) and at the best learning rate of a grid (1e-4 ... 1, chosen on the
validation split). Reported: test accuracy after the same number of epochs.

    python -m fromax.demo depth [--out fromax_depth.png]
"""

from __future__ import annotations

import jax
import optax

import fromax
from fromax.experiments import _common as c

DEPTHS = (2, 4, 8, 16, 32)
GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def run(out: str = "fromax_depth.png", small: bool = False, seed: int = 0) -> dict:
    c.need_extras()
    depths, grid = ((2, 4), (1e-3, 1e-1)) if small else (DEPTHS, GRID)
    epochs, width, batch = (2, 32, 64) if small else (30, 128, 64)
    train, val, test = c.digits(seed)
    print(f"depth study: digits ({len(train.x)} train / {len(val.x)} val / {len(test.x)} test), width {width}, "
          f"{epochs} epochs, batch {batch}; jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    evals = {"val": val, "test": test}
    rows, curves = [], {k: [] for k in ("Fromage 0.01", "Adam 1e-3", "Adam best", "SGD 1e-3", "SGD best")}
    for depth in depths:
        print(f"\ndepth {depth}")
        params = c.init_mlp(jax.random.PRNGKey(seed), depth, width)

        def fit(name, tx):
            return c.train_classifier(f"{name} (depth {depth})", tx, params, train, evals, epochs, batch, seed)

        fromage = fit("fromax.fromage 0.01", fromax.fromage())
        best = {}
        for label, make in (("Adam", optax.adam), ("SGD", optax.sgd)):
            sweep = {lr: fit(f"{label} {lr:g}", make(lr)) for lr in grid}
            default = sweep[1e-3] if 1e-3 in sweep else fit(f"{label} 1e-3", make(1e-3))
            lr_best = max(sweep, key=lambda lr: _score(sweep[lr]))
            best[label] = (default, lr_best, sweep[lr_best])
        row = [depth, c.final(fromage, "test_acc")]
        for label in ("Adam", "SGD"):
            default, lr_best, tuned = best[label]
            row += [c.final(default, "test_acc"), c.final(tuned, "test_acc"), f"{lr_best:g}"]
        rows.append(row)
        for key, value in zip(curves, (row[1], row[2], row[3], row[5], row[6])):
            curves[key].append(value)
    table = c.print_table(
        "test accuracy by depth (best lr chosen on validation accuracy)",
        ["depth", "Fromage 0.01", "Adam 1e-3", "Adam best", "Adam best lr", "SGD 1e-3", "SGD best", "SGD best lr"], rows)
    plt, fig, (ax,) = c.figure(1, 6.0, 4.2)
    for key, values in curves.items():
        ax.plot(depths, values, marker="o", label=key, linestyle="-" if "best" not in key else "--")
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set(xlabel="MLP depth (layers)", ylabel="test accuracy", title="digits: accuracy vs depth")
    ax.grid(alpha=0.3)
    ax.legend()
    c.save(plt, fig, out)
    return {"rows": rows, "table": table}


def _score(history: dict) -> float:
    acc = c.final(history, "val_acc")
    return acc if acc == acc else -1.0  # a diverged run (NaN) ranks last
