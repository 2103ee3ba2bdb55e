"""Every fromax.optim class with non-default hyperparameters, and what it must equal: an optax (or
fromax reference, backend="xla") transformation written out here from each class's documented math,
or a float64 NumPy oracle where optax has no counterpart (NAdam's scheduled momentum, Lookahead)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fromax
import fromax.optim as optim


class Case(NamedTuple):
    make: Callable[[], Any]  # the facade optimizer
    expected: Any  # an optax transformation, or a callable (params, grads_per_step) -> params (NumPy oracle)
    lr: float  # a learning rate that trains the digits MLP
    needs_value: bool = False


def _l2(wd, *rest):
    return optax.chain(optax.add_decayed_weights(wd), *rest)


def nadam_oracle(lr, b1, b2, eps, psi, wd):
    """PyTorch's NAdam (scheduled momentum, coupled weight decay) in float64."""

    def run(params, grads_seq):
        p = {k: np.asarray(v, np.float64) for k, v in params.items()}
        m = {k: np.zeros_like(v) for k, v in p.items()}
        v = {k: np.zeros_like(x) for k, x in p.items()}
        prod = 1.0
        for t, grads in enumerate(grads_seq, start=1):
            mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))
            mu_n = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            prod *= mu_t
            for k in p:
                g = np.asarray(grads[k], np.float64) + wd * p[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                denom = np.sqrt(v[k] / (1 - b2**t)) + eps
                p[k] = p[k] - lr * (mu_n * m[k] / (1 - prod * mu_n) + (1 - mu_t) * g / (1 - prod)) / denom
        return p

    return run


def lookahead_oracle(lr, k, alpha, wd):
    """Lookahead around SGD(lr) with coupled weight decay, in float64."""

    def run(params, grads_seq):
        p = {n: np.asarray(x, np.float64) for n, x in params.items()}
        slow = {n: x.copy() for n, x in p.items()}
        for t, grads in enumerate(grads_seq, start=1):
            for n in p:
                p[n] = p[n] - lr * (np.asarray(grads[n], np.float64) + wd * p[n])
            if t % k == 0:
                for n in p:
                    slow[n] = slow[n] + alpha * (p[n] - slow[n])
                    p[n] = slow[n].copy()
        return p

    return run


def _xla(fn, *args, **kwargs):
    return fn(*args, backend="xla", **kwargs)


CASES: dict[str, Case] = {
    "SGD": Case(lambda: optim.SGD(lr=0.05, momentum=0.8, weight_decay=1e-3, nesterov=True),
                _l2(1e-3, optax.trace(0.8, nesterov=True), optax.scale(-0.05)), 0.1),
    "Momentum": Case(lambda: optim.Momentum(lr=0.05, momentum=0.7, weight_decay=1e-3),
                     _l2(1e-3, optax.trace(0.7), optax.scale(-0.05)), 0.1),
    "MomentumNesterov": Case(lambda: optim.MomentumNesterov(lr=0.05, momentum=0.7),
                             optax.chain(optax.trace(0.7, nesterov=True), optax.scale(-0.05)), 0.1),
    "Adam": Case(lambda: optim.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
                 optax.adam(0.01, b1=0.8, b2=0.99, eps=1e-6), 0.01),
    "Adam(weight_decay, amsgrad)": Case(lambda: optim.Adam(lr=0.01, betas=(0.85, 0.999), eps=1e-6, weight_decay=1e-2, amsgrad=True),
                                        _l2(1e-2, optax.scale_by_amsgrad(b1=0.85, b2=0.999, eps=1e-6), optax.scale(-0.01)), 0.01),
    "AdamW": Case(lambda: optim.AdamW(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05),
                  optax.adamw(0.01, b1=0.8, b2=0.99, weight_decay=0.05), 0.01),
    "Adagrad": Case(lambda: optim.Adagrad(lr=0.1, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1),
                    _l2(1e-3, optax.scale_by_rss(initial_accumulator_value=0.1, eps=1e-10),
                        optax.scale_by_schedule(lambda c: 1 / (1 + 0.01 * c)), optax.scale(-0.1)), 0.05),
    "Adadelta": Case(lambda: optim.Adadelta(lr=1.0, rho=0.8, weight_decay=1e-3),
                     _l2(1e-3, optax.scale_by_adadelta(rho=0.8, eps=1e-6), optax.scale(-1.0)), 1.0),
    "RMSprop": Case(lambda: optim.RMSprop(lr=0.01, alpha=0.9, momentum=0.5, centered=True),
                    optax.chain(optax.scale_by_stddev(decay=0.9, eps=1e-8), optax.trace(0.5), optax.scale(-0.01)), 0.005),
    "Adamax": Case(lambda: optim.Adamax(lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
                   _l2(1e-3, optax.scale_by_adamax(b1=0.8, b2=0.99, eps=1e-8), optax.scale(-0.01)), 0.01),
    "Nadam": Case(lambda: optim.Nadam(lr=0.01, betas=(0.85, 0.99), weight_decay=1e-3, momentum_decay=0.01),
                  nadam_oracle(0.01, 0.85, 0.99, 1e-8, 0.01, 1e-3), 0.01),
    "RAdam": Case(lambda: optim.RAdam(lr=0.01, betas=(0.8, 0.99)), optax.radam(0.01, b1=0.8, b2=0.99), 0.01),
    "Lamb": Case(lambda: optim.Lamb(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
                 optax.lamb(0.01, b1=0.8, b2=0.99, weight_decay=0.01), 0.02),
    "Lars": Case(lambda: optim.Lars(lr=0.5, momentum=0.8, weight_decay=1e-3, trust_coefficient=0.01),
                 optax.lars(0.5, weight_decay=1e-3, trust_coefficient=0.01, eps=1e-8, momentum=0.8), 5.0),
    "Lookahead": Case(lambda: optim.Lookahead(optax.sgd(0.05), sync_period=2, alpha=0.5, lr=0.01, weight_decay=1e-3),
                      lookahead_oracle(0.05, 2, 0.5, 1e-3), 0.01),
    "Yogi": Case(lambda: optim.Yogi(lr=0.01, betas=(0.8, 0.99)),
                 optax.chain(optax.scale_by_yogi(b1=0.8, b2=0.99, eps=1e-3), optax.scale(-0.01)), 0.01),
    "LBFGS": Case(lambda: optim.LBFGS(lr=0.05, memory_size=4),
                  optax.lbfgs(0.05, memory_size=4, linesearch=None), 0.02),
    "Rprop": Case(lambda: optim.Rprop(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-5, 1.0)),
                  optax.rprop(0.01, eta_minus=0.4, eta_plus=1.3, min_step_size=1e-5, max_step_size=1.0), 0.001),
    "Adafactor": Case(lambda: optim.Adafactor(lr=0.01, clip_threshold=0.5, beta1=0.9, weight_decay=1e-3, eps=(1e-30, 1e-2)),
                      optax.chain(optax.scale_by_factored_rms(decay_rate=0.8, epsilon=1e-30), optax.clip_by_block_rms(0.5),
                                  optax.scale(0.01), optax.scale_by_param_block_rms(min_scale=1e-2), optax.ema(0.9, debias=False),
                                  optax.add_decayed_weights(1e-3), optax.scale(-1.0)), 0.01),
    "AdaBelief": Case(lambda: optim.AdaBelief(lr=0.01, betas=(0.8, 0.99)), optax.adabelief(0.01, b1=0.8, b2=0.99, eps=1e-16), 0.01),
    "Lion": Case(lambda: optim.Lion(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1),
                 optax.lion(1e-3, b1=0.8, b2=0.95, weight_decay=0.1), 1e-3),
    "SM3": Case(lambda: optim.SM3(lr=0.1, momentum=0.8),
                optax.chain(optax.scale_by_sm3(b1=0.8, b2=1.0, eps=1e-8), optax.scale(-0.1)), 0.05),
    "Novograd": Case(lambda: optim.Novograd(lr=0.01, betas=(0.8, 0.5), weight_decay=1e-3),
                     optax.novograd(0.01, b1=0.8, b2=0.5, eps=1e-8, weight_decay=1e-3), 0.01),
    "Fromage": Case(lambda: optim.Fromage(lr=0.02, p_bound=2.0), _xla(fromax.fromage, 0.02, p_bound=2.0), 0.01),
    # The fromax family: the pure-JAX reference of the same fromax function.
    "DoG": Case(lambda: optim.DoG(init_step=("heuristic", 1e-4), weight_decay=1e-3),
                _xla(fromax.dog, 1.0, init_step=("heuristic", 1e-4), weight_decay=1e-3), 1.0),
    "DoWG": Case(lambda: optim.DoWG(lr=0.5), _xla(fromax.dowg, 0.5), 1.0),
    "Prodigy": Case(lambda: optim.Prodigy(betas=(0.8, 0.99), estim_lr0=1e-3, weight_decay=1e-3),
                    _xla(fromax.prodigy, 1.0, betas=(0.8, 0.99), estim_lr0=1e-3, weight_decay=1e-3), 1.0),
    "DAdaptAdamW": Case(lambda: optim.DAdaptAdamW(estim_lr0=1e-3), _xla(fromax.dadapt_adamw, 1.0, estim_lr0=1e-3), 1.0),
    "COCOB": Case(lambda: optim.COCOB(alpha=50.0), _xla(fromax.cocob, 1.0, alpha=50.0), 1.0),
    "Mechanic": Case(lambda: optim.Mechanic(lr=0.01, s_init=1e-2),
                     _xla(fromax.mechanize, fromax.adamw(0.01, weight_decay=0.0, backend="xla"), s_init=1e-2), 0.01),
    "MoMo": Case(lambda: optim.MoMo(lr=0.5, beta=0.8), _xla(fromax.momo, 0.5, beta=0.8), 1.0, needs_value=True),
    "MoMoAdam": Case(lambda: optim.MoMoAdam(lr=0.05), _xla(fromax.momo_adam, 0.05), 0.05, needs_value=True),
    "ScheduleFree": Case(lambda: optim.ScheduleFree(lr=0.01, weight_decay=1e-3),
                         _xla(fromax.schedule_free, fromax.adamw(0.01, b1=0.0, weight_decay=1e-3, backend="xla"), 0.01), 0.01),
    "HypergradientAdamW": Case(lambda: optim.HypergradientAdamW(lr=0.01, beta_hyper=1e-5),
                               _xla(fromax.hypergradient_adamw, 0.01, beta_hyper=1e-5), 0.01),
    "AutoHypergradientAdamW": Case(lambda: optim.AutoHypergradientAdamW(lr=0.01, adapt_momentum=True, track_surprise=True),
                                   _xla(fromax.auto_hypergradient_adamw, 0.01, adapt_momentum=True, track_surprise=True), 0.01),
}


def make_with_lr(name: str, lr: float):
    """The class of case ``name`` at learning rate ``lr`` and its other defaults (for training)."""
    cls = getattr(optim, name.split("(")[0])
    if cls is optim.Lookahead:
        return cls(optax.sgd(lr * 10), lr=lr)
    # DoG's and Mechanic's first steps are ~1e-6 of the weights by default: a larger (still
    # tuning-free) start lets the test's 40 steps show progress.
    start = {optim.DoG: {"init_step": ("heuristic", 1e-4)}, optim.Mechanic: {"s_init": 1e-4}}.get(cls, {})
    return cls(lr=lr, **start)


def run_expected(expected, params: dict, grads_seq: list, values: list) -> dict:
    if isinstance(expected, optax.GradientTransformation):
        tx = optax.with_extra_args_support(expected)
        state = tx.init(params)
        for g, v in zip(grads_seq, values):
            extra = {"value": v} if v is not None else {}
            upd, state = tx.update(g, state, params, **extra)
            params = optax.apply_updates(params, upd)
        return jax.tree.map(np.asarray, params)
    return expected(params, grads_seq)


def tree_close(a, b, rtol, atol):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol), a, b)


def flat_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}
