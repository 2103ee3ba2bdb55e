"""The optimizer family under test: each fromax optimizer beside its optax counterpart.

``CASES[name] = (make_fromax(backend), make_optax() or None, needs_value)``. An optimizer with no optax
counterpart (the hypergradient ones) is checked against tests/hypergradient_oracle.py instead.
"""

from __future__ import annotations

import optax
from optax import contrib

import fromax


def _no_bias(params):
    """A weight-decay mask: every leaf but the 1-d ones (biases)."""
    import jax

    return jax.tree.map(lambda p: p.ndim != 1, params)


CASES = {
    "adamw": (lambda b: fromax.adamw(3e-2, weight_decay=0.1, mask=_no_bias, backend=b), lambda: optax.adamw(3e-2, weight_decay=0.1, mask=_no_bias), False),
    "nadamw": (lambda b: fromax.adamw(3e-2, eps_root=1e-8, nesterov=True, backend=b), lambda: optax.adamw(3e-2, eps_root=1e-8, nesterov=True), False),
    "lamb": (lambda b: fromax.lamb(3e-2, weight_decay=0.1, backend=b), lambda: optax.lamb(3e-2, weight_decay=0.1), False),
    "lars": (lambda b: fromax.lars(0.3, weight_decay=1e-3, trust_coefficient=0.01, backend=b), lambda: optax.lars(0.3, weight_decay=1e-3, trust_coefficient=0.01), False),
    "lars_nesterov_masked": (
        lambda b: fromax.lars(0.3, weight_decay=1e-3, weight_decay_mask=_no_bias, trust_ratio_mask=_no_bias, nesterov=True, backend=b),
        lambda: optax.lars(0.3, weight_decay=1e-3, weight_decay_mask=_no_bias, trust_ratio_mask=_no_bias, nesterov=True),
        False,
    ),
    "novograd": (lambda b: fromax.novograd(3e-2, weight_decay=1e-3, backend=b), lambda: optax.novograd(3e-2, weight_decay=1e-3), False),
    "dog": (lambda b: fromax.dog(backend=b), lambda: contrib.dog(), False),
    "dog_lr_init_wd": (
        lambda b: fromax.dog(init_step=("learning_rate", 1e-3), weight_decay=1e-3, mask=_no_bias, backend=b),
        lambda: contrib.dog(init_step=("learning_rate", 1e-3), weight_decay=1e-3, mask=_no_bias),
        False,
    ),
    "dowg": (lambda b: fromax.dowg(backend=b), lambda: contrib.dowg(), False),
    "prodigy": (lambda b: fromax.prodigy(backend=b), lambda: contrib.prodigy(), False),
    "prodigy_safeguard_wd": (
        lambda b: fromax.prodigy(safeguard_warmup=True, weight_decay=1e-2, backend=b),
        lambda: contrib.prodigy(safeguard_warmup=True, weight_decay=1e-2),
        False,
    ),
    "dadapt_adamw": (lambda b: fromax.dadapt_adamw(weight_decay=1e-2, backend=b), lambda: contrib.dadapt_adamw(weight_decay=1e-2), False),
    "cocob": (lambda b: fromax.cocob(weight_decay=1e-3, backend=b), lambda: contrib.cocob(weight_decay=1e-3), False),
    "mechanize": (lambda b: fromax.mechanize(fromax.adamw(1e-2, backend=b), backend=b), lambda: contrib.mechanize(optax.adamw(1e-2)), False),
    "momo": (lambda b: fromax.momo(weight_decay=1e-3, backend=b), lambda: contrib.momo(weight_decay=1e-3), True),
    "momo_adaptive_lb": (lambda b: fromax.momo(adapt_lower_bound=True, backend=b), lambda: contrib.momo(adapt_lower_bound=True), True),
    "momo_adam": (lambda b: fromax.momo_adam(weight_decay=1e-3, backend=b), lambda: contrib.momo_adam(weight_decay=1e-3), True),
    "momo_adam_adaptive_lb": (lambda b: fromax.momo_adam(adapt_lower_bound=True, backend=b), lambda: contrib.momo_adam(adapt_lower_bound=True), True),
    "schedule_free": (
        lambda b: fromax.schedule_free(fromax.adamw(1e-2, backend=b), 1e-2, backend=b),
        lambda: contrib.schedule_free(optax.adamw(1e-2), 1e-2),
        False,
    ),
    "schedule_free_sgd": (
        lambda b: fromax.schedule_free_sgd(0.1, warmup_steps=5, weight_decay=1e-3, backend=b),
        lambda: contrib.schedule_free_sgd(0.1, warmup_steps=5, weight_decay=1e-3),
        False,
    ),
    "schedule_free_adamw": (
        lambda b: fromax.schedule_free_adamw(3e-2, warmup_steps=5, weight_decay=1e-3, backend=b),
        lambda: contrib.schedule_free_adamw(3e-2, warmup_steps=5, weight_decay=1e-3),
        False,
    ),
    "hypergradient_adamw": (lambda b: fromax.hypergradient_adamw(1e-2, beta_hyper=1e-3, backend=b), None, False),
    "hypergradient_adamw_log": (lambda b: fromax.hypergradient_adamw(1e-2, beta_hyper=1e-2, log_scale=True, backend=b), None, False),
    "auto_hypergradient_adamw": (lambda b: fromax.auto_hypergradient_adamw(1e-2, warmup_steps=3, backend=b), None, False),
    "auto_hypergradient_adamw_full": (
        lambda b: fromax.auto_hypergradient_adamw(1e-2, warmup_steps=3, adapt_momentum=True, track_surprise=True, backend=b),
        None,
        False,
    ),
}


# Every optimizer that optax.inject_hyperparams can rebuild from array hyperparameters: its factory
# and those hyperparameters' values.
INJECTABLE = {
    "adamw": (fromax.adamw, {"learning_rate": 1e-2, "weight_decay": 1e-3}),
    "lamb": (fromax.lamb, {"learning_rate": 1e-2}),
    "lars": (fromax.lars, {"learning_rate": 0.1, "momentum": 0.9}),
    "novograd": (fromax.novograd, {"learning_rate": 1e-2}),
    "dog": (fromax.dog, {"learning_rate": 1.0}),
    "dowg": (fromax.dowg, {"learning_rate": 1.0}),
    "prodigy": (fromax.prodigy, {"learning_rate": 1.0}),
    "dadapt_adamw": (fromax.dadapt_adamw, {"learning_rate": 1.0}),
    "cocob": (fromax.cocob, {"learning_rate": 1.0}),
    "momo": (fromax.momo, {"learning_rate": 1.0}),
    "momo_adam": (fromax.momo_adam, {"learning_rate": 1e-2}),
    "schedule_free_sgd": (fromax.schedule_free_sgd, {"learning_rate": 0.1}),
    "schedule_free_adamw": (fromax.schedule_free_adamw, {"learning_rate": 1e-2}),
    "hypergradient_adamw": (fromax.hypergradient_adamw, {"learning_rate": 1e-2}),
    "auto_hypergradient_adamw": (fromax.auto_hypergradient_adamw, {"learning_rate": 1e-2}),
}
