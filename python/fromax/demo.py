"""fromax demo: an MLP on scikit-learn's bundled digits, Fromage at its default lr beside Adam.

    pip install '.[demo]' && python -m fromax.demo [--epochs 40] [--out fromax_demo.png]

The paper's experiments in small (fromax.experiments), each one command:

    python -m fromax.demo depth | paper-depth | lr-sensitivity | transformer | lr-free [--out PNG] [--seed 0] [--small]
    python -m fromax.demo paper-depth [--epochs 100] [--width 64] [--depths 1,2,...] [--batch 250]
                                      [--decay 0.95] [--init torch|he]   (the paper's depth protocol)

Trains the same MLP (64-256-256-10, ReLU) from the same initialisation with
  * fromax.fromage() at its default learning rate 0.01 (no tuning), via the fused `fromax.step`
  * optax.adam() at its default learning rate 1e-3
prints progress and test accuracy, times one optimizer step of the fused kernel against
optax.fromage (both jitted, params donated), and writes a PNG plot of the loss curves.
No download: the digits data (1,797 8x8 images) ships inside scikit-learn.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax


def load_digits(seed: int):
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:  # pragma: no cover - message for users without the extra
        sys.exit("fromax.demo needs scikit-learn and matplotlib: pip install 'fromax[demo]'")
    data = sk_load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 4
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def init_mlp(key, sizes=(64, 256, 256, 10)):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, sub = jax.random.split(key)
        params[f"layer{i}"] = {
            "w": jax.random.normal(sub, (n_in, n_out)) * np.sqrt(2.0 / n_in),
            "b": jnp.zeros(n_out),
        }
    return params


def forward(params, x):
    n = len(params)
    for i in range(n):
        layer = params[f"layer{i}"]
        x = x @ layer["w"] + layer["b"]
        if i < n - 1:
            x = jax.nn.relu(x)
    return x


def loss_fn(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()


def accuracy(params, x, y) -> float:
    return float(jnp.mean(jnp.argmax(forward(params, x), -1) == y))


def make_train_step(tx):
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        params, state = fromax.step(tx, grads, state, params)
        return params, state, loss

    return train_step


def train(name, tx, params, data, epochs, batch, seed):
    (x_tr, y_tr), (x_te, y_te) = data
    params = jax.tree.map(jnp.copy, params)
    state = tx.init(params)
    step = make_train_step(tx)
    eval_loss = jax.jit(loss_fn)
    rng = np.random.default_rng(seed)
    history = {"train": [], "test": []}
    steps_per_epoch = len(x_tr) // batch
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_tr))
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            params, state, loss = step(params, state, x_tr[idx], y_tr[idx])
            losses.append(loss)
        history["train"].append(float(jnp.mean(jnp.stack(losses))))
        history["test"].append(float(eval_loss(params, x_te, y_te)))
        bar = "#" * int(30 * epoch / epochs)
        print(f"\r  {name:22s} [{bar:<30s}] epoch {epoch:3d}/{epochs}  train loss {history['train'][-1]:.4f}  "
              f"test loss {history['test'][-1]:.4f}", end="", flush=True)
    print()
    return params, history


def time_optimizer_step(tx, params, reps: int = 200) -> float:
    """Median ms of one jitted optimizer step with the params donated (re-created outside the timing).

    Through `fromax.step`: the fused kernel for a fromax transformation, `update` + `apply_updates`
    for any other optax one."""
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.01), params)
    step = jax.jit(functools.partial(fromax.step, tx), donate_argnums=(2,))
    state = tx.init(params)
    jax.block_until_ready(step(grads, state, jax.tree.map(jnp.copy, params)))
    samples = []
    for _ in range(reps):
        p = jax.block_until_ready(jax.tree.map(jnp.copy, params))
        t0 = time.perf_counter()
        jax.block_until_ready(step(grads, state, p))
        samples.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(samples)


def plot(histories, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, hist in histories.items():
        epochs = np.arange(1, len(hist["train"]) + 1)
        axes[0].plot(epochs, hist["train"], label=name)
        axes[1].plot(epochs, hist["test"], label=name)
    for ax, title in zip(axes, ("train loss", "test loss")):
        ax.set_title(f"digits MLP: {title}")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("cross-entropy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_experiment(argv) -> int:
    from fromax.experiments import EXPERIMENTS, run

    ap = argparse.ArgumentParser(prog="python -m fromax.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=EXPERIMENTS)
    ap.add_argument("--out", default=None, help="where to write the plot (default fromax_<experiment>.png)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="a tiny configuration (seconds): a smoke test, not the results")
    ap.add_argument("--epochs", type=int, default=None, help="paper-depth only: epochs (default 100, as the paper)")
    ap.add_argument("--width", type=int, default=None, help="paper-depth only: hidden width (default 64)")
    ap.add_argument("--depths", type=lambda v: tuple(int(d) for d in v.split(",")), default=None,
                    help="paper-depth only: comma-separated depths (default 1-10,15,...,50)")
    ap.add_argument("--batch", type=int, default=None, help="paper-depth only: batch size (default 250)")
    ap.add_argument("--decay", type=float, default=None, help="paper-depth only: lr factor per epoch (default 0.95; 1 = none)")
    ap.add_argument("--init", choices=("torch", "he"), default=None, help="paper-depth only: initialisation (default torch)")
    args = ap.parse_args(argv)
    out = args.out or f"fromax_{args.experiment.replace('-', '_')}.png"
    extra = {k: getattr(args, k) for k in ("epochs", "width", "depths", "batch", "decay", "init") if getattr(args, k) is not None}
    if extra and args.experiment != "paper-depth":
        ap.error(f"--{'/--'.join(extra)} only apply to paper-depth")
    run(args.experiment, out=out, small=args.small, seed=args.seed, **extra)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-"):
        return run_experiment(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fromax_demo.png", help="where to write the loss-curve plot")
    ap.add_argument("--timing-reps", type=int, default=200)
    args = ap.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("fromax.demo needs scikit-learn and matplotlib: pip install 'fromax[demo]'")

    data = load_digits(args.seed)
    params = init_mlp(jax.random.PRNGKey(args.seed))
    n_params = sum(p.size for p in jax.tree.leaves(params))
    print(f"fromax demo: MLP {n_params:,} params on digits ({len(data[0][0])} train / {len(data[1][0])} test), "
          f"{args.epochs} epochs, batch {args.batch}; jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    runs = {
        "fromax.fromage (lr=0.01)": fromax.fromage(),  # the default: no tuning
        "optax.adam (lr=1e-3)": optax.adam(1e-3),
    }
    histories, results = {}, {}
    for name, tx in runs.items():
        trained, histories[name] = train(name, tx, params, data, args.epochs, args.batch, args.seed)
        results[name] = accuracy(trained, *data[1])
    print("\ntest accuracy")
    for name, acc in results.items():
        print(f"  {name:26s} {100 * acc:6.2f} %")

    fused = time_optimizer_step(fromax.fromage(), params, reps=args.timing_reps)
    reference = time_optimizer_step(optax.fromage(0.01), params, reps=args.timing_reps)
    print(f"\noptimizer step on this MLP ({len(jax.tree.leaves(params))} tensors; jitted, params donated, median of {args.timing_reps}):")
    print(f"  fromax fused step   {fused * 1e3:8.1f} us")
    print(f"  optax.fromage       {reference * 1e3:8.1f} us   ({reference / fused:.2f}x the fused step)")
    print("  (a tiny model is dispatch-bound; bench/step_time.py measures real model shapes)")

    plot(histories, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
