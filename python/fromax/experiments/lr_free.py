"""lr-free: the whole fromax family at its defaults, on two tasks, one table and one plot.

Every fromax optimizer that needs no learning rate (or has a default one) at its defaults, untuned:
on the depth-8 digits MLP of the depth study and on the byte-level Transformer of the transformer
experiment. Schedule-Free is evaluated at its averaged point (``schedule_free_eval_params``).

    python -m fromax.demo lr-free [--out fromax_lr_free.png]
"""

from __future__ import annotations

import jax

import fromax
from fromax.experiments import _common as c
from fromax.experiments import transformer as lm


def family() -> dict:
    return {
        "fromage": fromax.fromage(),
        "dog": fromax.dog(),
        "dowg": fromax.dowg(),
        "prodigy": fromax.prodigy(),
        "dadapt_adamw": fromax.dadapt_adamw(),
        "cocob": fromax.cocob(),
        "mechanize(adamw 1e-3)": fromax.mechanize(fromax.adamw(1e-3)),
        "momo": fromax.momo(),
        "momo_adam": fromax.momo_adam(),
        "schedule_free_sgd": fromax.schedule_free_sgd(),
        "schedule_free_adamw": fromax.schedule_free_adamw(),
        "hypergradient_adamw": fromax.hypergradient_adamw(),
        "auto_hypergradient_adamw": fromax.auto_hypergradient_adamw(),
    }


def _eval_params(name: str):
    return fromax.schedule_free_eval_params if name.startswith("schedule_free") else None


def run(out: str = "fromax_lr_free.png", small: bool = False, seed: int = 0) -> dict:
    c.need_extras()
    runs = family()
    if small:
        runs = {k: runs[k] for k in ("fromage", "dog", "momo", "schedule_free_adamw")}
    epochs, width, depth, batch = (2, 32, 3, 64) if small else (30, 128, 8, 64)
    cfg = lm.SMALL if small else lm.Config()
    print(f"the fromax family at defaults ({len(runs)} optimizers): depth-{depth} digits MLP ({epochs} epochs) and the "
          f"byte-level Transformer ({cfg.steps} steps); jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    train, val, test = c.digits(seed)
    mlp_params = c.init_mlp(jax.random.PRNGKey(seed), depth, width)
    print("\ndigits MLP")
    mlp = {name: c.train_classifier(name, tx, mlp_params, train, {"test": test}, epochs, batch, seed, _eval_params(name))
           for name, tx in runs.items()}
    print("\nTransformer")
    text_train, text_val = lm.corpus(cfg, small)
    val_batches = lm.validation_batches(text_val, cfg)
    lm_params = lm.init_transformer(jax.random.PRNGKey(seed), cfg)
    text = {name: lm.train_lm(name, tx, lm_params, cfg, text_train, val_batches, seed, _eval_params(name))
            for name, tx in runs.items()}
    rows = [[name, c.final(mlp[name], "test_acc"), c.final(mlp[name], "test_loss"), text[name]["val_bpc"][-1]] for name in runs]
    table = c.print_table("the fromax family at defaults",
                          ["optimizer", f"digits depth-{depth}: test acc", "test loss", "Transformer: val bpc"], rows)
    plt, fig, (a, b) = c.figure(2, 6.0, 4.5)
    for name in runs:
        a.plot(range(1, len(mlp[name]["test_loss"]) + 1), mlp[name]["test_loss"], label=name)
        b.plot(text[name]["step"], text[name]["val_bpc"], label=name)
    a.set(xlabel="epoch", ylabel="test loss", title=f"digits, depth-{depth} MLP", yscale="log")
    b.set(xlabel="step", ylabel="validation bits per character", title="byte-level Transformer")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=7, ncol=2)
    c.save(plt, fig, out)
    return {"mlp": mlp, "transformer": text, "table": table}
