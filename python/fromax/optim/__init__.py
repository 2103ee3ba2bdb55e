"""``fromax.optim``: a brainstate-style optimizer facade, drop-in for ``braintools.optim`` (0.3.0).

PyTorch-like optimizer objects over ``brainstate.State`` parameters, backed by fromax's fused
kernels where fromax has one, with the 23 optimizers and 17 learning-rate schedulers of
``braintools.optim`` (same names, signatures and defaults) plus classes for the fromax family.
``import fromax`` never needs brainstate; this module does: ``pip install 'fromax[brainstate]'``.

Examples
--------
>>> import brainstate, jax.numpy as jnp, fromax.optim as optim
>>> w = brainstate.ParamState(jnp.ones((2, 2)))
>>> opt = optim.Fromage(lr=0.01)
>>> opt = opt.register_trainable_weights({"w": w})
>>> @brainstate.transform.jit
... def train_step():
...     grads = brainstate.transform.grad(lambda: jnp.sum(w.value ** 2), {"w": w})()
...     opt.step(grads)
>>> train_step()
"""

try:
    import brainstate  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised in a venv without brainstate
    raise ImportError(
        "fromax.optim needs brainstate, an optional dependency of fromax: pip install 'fromax[brainstate]'"
    ) from e

from fromax.optim._base import OptaxOptimizer
from fromax.optim._lr_free import (
    COCOB, AutoHypergradientAdamW, DAdaptAdamW, DoG, DoWG, HypergradientAdamW, Mechanic, MoMo, MoMoAdam, Prodigy, ScheduleFree,
)
from fromax.optim._optimizers import (
    LBFGS, SGD, SM3, AdaBelief, Adadelta, Adafactor, Adagrad, Adam, Adamax, AdamW, Fromage, Lamb, Lars, Lion, Lookahead, Momentum,
    MomentumNesterov, Nadam, Novograd, RAdam, RMSprop, Rprop, Yogi,
)
from fromax.optim._schedulers import (
    ChainedScheduler, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, ExponentialDecayLR, ExponentialLR,
    LinearLR, LRScheduler, MultiStepLR, OneCycleLR, PiecewiseConstantSchedule, PolynomialLR, ReduceLROnPlateau, SequentialLR,
    StepLR, WarmupCosineSchedule, WarmupScheduler,
)
from fromax.optim._state import OptimState

OPTIMIZERS = (
    "SGD", "Momentum", "MomentumNesterov", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Adamax", "Nadam", "RAdam", "Lamb",
    "Lars", "Lookahead", "Yogi", "LBFGS", "Rprop", "Adafactor", "AdaBelief", "Lion", "SM3", "Novograd", "Fromage",
)
FAMILY = (
    "DoG", "DoWG", "Prodigy", "DAdaptAdamW", "COCOB", "Mechanic", "MoMo", "MoMoAdam", "ScheduleFree", "HypergradientAdamW",
    "AutoHypergradientAdamW",
)
SCHEDULERS = (
    "StepLR", "MultiStepLR", "ExponentialLR", "ExponentialDecayLR", "CosineAnnealingLR", "PolynomialLR", "WarmupScheduler",
    "CyclicLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR", "ConstantLR", "ChainedScheduler", "SequentialLR",
    "CosineAnnealingWarmRestarts", "WarmupCosineSchedule", "PiecewiseConstantSchedule",
)

__all__ = [
    "OptaxOptimizer", "OptimState", "LRScheduler", "SGD", "Momentum", "MomentumNesterov", "Adam", "AdamW", "Adagrad",
    "Adadelta", "RMSprop", "Adamax", "Nadam", "RAdam", "Lamb", "Lars", "Lookahead", "Yogi", "LBFGS", "Rprop",
    "Adafactor", "AdaBelief", "Lion", "SM3", "Novograd", "Fromage", "DoG", "DoWG", "Prodigy", "DAdaptAdamW", "COCOB",
    "Mechanic", "MoMo", "MoMoAdam", "ScheduleFree", "HypergradientAdamW", "AutoHypergradientAdamW", "StepLR",
    "MultiStepLR", "ExponentialLR", "ExponentialDecayLR", "CosineAnnealingLR", "PolynomialLR", "WarmupScheduler",
    "CyclicLR", "OneCycleLR", "ReduceLROnPlateau", "LinearLR", "ConstantLR", "ChainedScheduler", "SequentialLR",
    "CosineAnnealingWarmRestarts", "WarmupCosineSchedule", "PiecewiseConstantSchedule",
]
