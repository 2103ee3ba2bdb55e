"""transformer: the paper's Transformer experiment, in small.

A character-level (byte-level) Transformer language model on the English text that ships with
CPython (``pydoc_data.topics``; the first 90 % trains, the last 10 % validates). Fromage at 0.01,
with and without ``p_bound=1.0``, against Adam at the best learning rate of a grid and the
learning-rate-free family (Prodigy, DoG, D-Adapt AdamW, Mechanic around Adam). Reported: validation
loss in bits per character along training.

    python -m fromax.demo transformer [--out fromax_transformer.png]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax
from fromax.experiments import _common as c


class Config(NamedTuple):
    layers: int = 2
    d_model: int = 64
    heads: int = 4
    context: int = 64
    batch: int = 32
    steps: int = 600
    eval_every: int = 50
    eval_batches: int = 8


SMALL = Config(layers=1, d_model=32, heads=2, context=32, batch=8, steps=20, eval_every=10, eval_batches=2)
VOCAB = 256  # bytes


def init_transformer(key: jax.Array, cfg: Config) -> dict:
    d = cfg.d_model
    keys = iter(jax.random.split(key, 4 + 6 * cfg.layers))
    dense = lambda m, n: jax.random.normal(next(keys), (m, n)) / math.sqrt(m)  # noqa: E731
    norm = lambda: {"scale": jnp.ones(d), "bias": jnp.zeros(d)}  # noqa: E731
    params = {"embed": jax.random.normal(next(keys), (VOCAB, d)) * 0.1,
              "position": jax.random.normal(next(keys), (cfg.context, d)) * 0.1,
              "final_norm": norm(), "head": dense(d, VOCAB)}
    for i in range(cfg.layers):
        params[f"block{i}"] = {
            "norm1": norm(), "query": dense(d, d), "key": dense(d, d), "value": dense(d, d), "out": dense(d, d),
            "norm2": norm(), "up": dense(d, 4 * d), "up_bias": jnp.zeros(4 * d), "down": dense(4 * d, d),
            "down_bias": jnp.zeros(d),
        }
    return params


def _layer_norm(p: dict, x: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def transformer(params: dict, tokens: jax.Array, heads: int) -> jax.Array:
    """Pre-norm causal Transformer: (batch, time) bytes -> (batch, time, 256) logits."""
    b, t = tokens.shape
    x = params["embed"][tokens] + params["position"][:t]
    mask = jnp.tril(jnp.ones((t, t), bool))
    layers = sorted(k for k in params if k.startswith("block"))
    for name in layers:
        p = params[name]
        h = _layer_norm(p["norm1"], x)
        split = lambda w: (h @ w).reshape(b, t, heads, -1)  # noqa: E731
        q, k, v = split(p["query"]), split(p["key"]), split(p["value"])
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        attn = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        x = x + jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, t, -1) @ p["out"]
        h = _layer_norm(p["norm2"], x)
        x = x + jax.nn.gelu(h @ p["up"] + p["up_bias"]) @ p["down"] + p["down_bias"]
    return _layer_norm(params["final_norm"], x) @ params["head"]


def corpus(cfg: Config, small: bool) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(c.python_docs_text(), np.uint8)
    if small:
        data = data[:200_000]
    cut = int(0.9 * len(data))
    return data[:cut], data[cut:]


def windows(data: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    return data[starts[..., None] + np.arange(length)]


def train_lm(name: str, tx, params: dict, cfg: Config, train: np.ndarray, val_batches: np.ndarray, seed: int,
             eval_params=None) -> dict:
    loss_fn = lambda p, x, y: c.cross_entropy(transformer(p, x, cfg.heads), y)  # noqa: E731
    chunk_fn = c.make_epoch(tx, loss_fn)
    val_loss = jax.jit(lambda p, s: jnp.mean(jax.vmap(lambda w: loss_fn(p, w[:, :-1], w[:, 1:]))(s)))
    params = jax.tree.map(jnp.copy, params)
    state = tx.init(params)
    rng = np.random.default_rng(seed)
    history = {"step": [], "val_bpc": [], "train_bpc": []}
    bar = c.Progress(name, cfg.steps)
    for done in range(0, cfg.steps, cfg.eval_every):
        starts = rng.integers(0, len(train) - cfg.context - 1, size=(cfg.eval_every, cfg.batch))
        seqs = jnp.asarray(windows(train, starts, cfg.context + 1), jnp.int32)
        params, state, losses = chunk_fn(params, state, seqs[..., :-1], seqs[..., 1:])
        history["step"].append(done + cfg.eval_every)
        history["train_bpc"].append(float(jnp.mean(losses)) / math.log(2))
        at = params if eval_params is None else eval_params(state, params)
        history["val_bpc"].append(float(val_loss(at, val_batches)) / math.log(2))
        bar.update(done + cfg.eval_every, f"val {history['val_bpc'][-1]:.3f} bpc")
        if not math.isfinite(history["val_bpc"][-1]):
            break
    bar.close()
    return history


def validation_batches(val: np.ndarray, cfg: Config) -> jnp.ndarray:
    """A fixed set of validation windows (the same for every optimizer)."""
    starts = np.random.default_rng(1234).integers(0, len(val) - cfg.context - 1, size=(cfg.eval_batches, cfg.batch))
    return jnp.asarray(windows(val, starts, cfg.context + 1), jnp.int32)


def optimizers(adam_grid) -> dict:
    runs = {"Fromage 0.01": fromax.fromage(0.01), "Fromage 0.01, p_bound=1": fromax.fromage(0.01, p_bound=1.0)}
    runs.update({f"Adam {lr:g}": optax.adam(lr) for lr in adam_grid})
    runs.update({
        "Prodigy": fromax.prodigy(),
        "DoG": fromax.dog(),
        "D-Adapt AdamW": fromax.dadapt_adamw(),
        "Mechanic(Adam 1e-3)": fromax.mechanize(fromax.adamw(1e-3, weight_decay=0.0)),
    })
    return runs


def run(out: str = "fromax_transformer.png", small: bool = False, seed: int = 0) -> dict:
    c.need_extras()
    cfg = SMALL if small else Config()
    adam_grid = (1e-3, 1e-2) if small else (3e-4, 1e-3, 3e-3, 1e-2)
    train, val = corpus(cfg, small)
    params = init_transformer(jax.random.PRNGKey(seed), cfg)
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"byte-level Transformer LM on CPython's pydoc topics ({len(train):,} train / {len(val):,} val bytes): "
          f"{cfg.layers} layers, d={cfg.d_model}, {cfg.heads} heads, context {cfg.context}, {n:,} params, "
          f"{cfg.steps} steps of batch {cfg.batch}; jax {jax.__version__}, kernels on {fromax.kernel_platforms()}")
    val_batches = validation_batches(val, cfg)
    histories = {name: train_lm(name, tx, params, cfg, train, val_batches, seed) for name, tx in optimizers(adam_grid).items()}
    adam = {k: v for k, v in histories.items() if k.startswith("Adam")}
    best_adam = min(adam, key=lambda k: _final_or_inf(adam[k]))
    rows = [[name + (" (best Adam)" if name == best_adam else ""), h["val_bpc"][-1], min(h["val_bpc"])] for name, h in histories.items()]
    table = c.print_table(f"validation bits per character after {cfg.steps} steps", ["optimizer", "final val bpc", "best val bpc"], rows)
    plt, fig, (ax,) = c.figure(1, 6.5, 4.5)
    for name, h in histories.items():
        if name.startswith("Adam") and name != best_adam:
            continue
        ax.plot(h["step"], h["val_bpc"], label=name + (" (best of grid)" if name == best_adam else ""))
    ax.set(xlabel="step", ylabel="validation bits per character", title="byte-level Transformer on pydoc text")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    c.save(plt, fig, out)
    return {"histories": histories, "best_adam": best_adam, "table": table}


def _final_or_inf(history: dict) -> float:
    v = history["val_bpc"][-1] if history["val_bpc"] else float("inf")
    return v if math.isfinite(v) else float("inf")
