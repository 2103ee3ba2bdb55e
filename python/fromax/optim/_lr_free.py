"""Classes for the fromax family (learning-rate-free and hypergradient optimizers), on its fused
kernels. Arguments are the fromax functions' (``lr`` for ``learning_rate``), so each class's math
is its function's docstring.

Most of them reduce over the whole model (DoG's distance, Prodigy's and D-Adapt's D estimate,
MoMo's step size, Mechanic's scale, the hypergradient): one transformation then spans every
parameter group, and a group may set only its own ``lr``, which scales its share of the step.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import optax

import fromax
from fromax.optim._base import _check_transformation
from fromax.optim._optimizers import LR, Clip, _Optimizer, _betas

__all__ = [
    "DoG", "DoWG", "Prodigy", "DAdaptAdamW", "COCOB", "Mechanic", "MoMo", "MoMoAdam", "ScheduleFree", "HypergradientAdamW",
    "AutoHypergradientAdamW",
]


def _wd_or_none(wd: float) -> Optional[float]:
    return wd if wd > 0 else None


class DoG(_Optimizer):
    r"""DoG, distance over gradients (:func:`fromax.dog`): :math:`\eta_t = \max_{s\le t}\|x_s - x_0\| /
    \sqrt{\sum_{s\le t}\|g_s\|^2}`, times ``lr`` (1: no tuning)."""

    _global_reduce = True

    def __init__(self, lr: LR = 1.0, init_step: Tuple[str, Any] = ("heuristic", 1e-6), eps: float = 1e-8,
                 weight_decay: float = 0.0, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, init_step=tuple(init_step), eps=float(eps))

    def _algorithm(self, lr, hp):
        return fromax.dog(lr, init_step=hp["init_step"], eps=hp["eps"], weight_decay=_wd_or_none(hp["weight_decay"]))


class DoWG(_Optimizer):
    r"""DoWG, distance over weighted gradients (:func:`fromax.dowg`)."""

    _global_reduce = True

    def __init__(self, lr: LR = 1.0, init_estim_sq_dist: Optional[float] = None, eps: float = 1e-4, weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, init_estim_sq_dist=init_estim_sq_dist, eps=float(eps))

    def _algorithm(self, lr, hp):
        return fromax.dowg(lr, init_estim_sq_dist=hp["init_estim_sq_dist"], eps=hp["eps"], weight_decay=_wd_or_none(hp["weight_decay"]))


class Prodigy(_Optimizer):
    r"""Prodigy (:func:`fromax.prodigy`): Adam whose step size :math:`d` is estimated from the distance
    travelled; ``lr`` multiplies it."""

    _global_reduce = True

    def __init__(self, lr: LR = 1.0, betas: Tuple[float, float] = (0.9, 0.999), beta3: Optional[float] = None, eps: float = 1e-8,
                 estim_lr0: float = 1e-6, estim_lr_coef: float = 1.0, weight_decay: float = 0.0, safeguard_warmup: bool = False,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("Prodigy", betas), beta3=beta3,
                         eps=float(eps), estim_lr0=float(estim_lr0), estim_lr_coef=float(estim_lr_coef),
                         safeguard_warmup=bool(safeguard_warmup))

    def _algorithm(self, lr, hp):
        return fromax.prodigy(lr, betas=hp["betas"], beta3=hp["beta3"], eps=hp["eps"], estim_lr0=hp["estim_lr0"],
                              estim_lr_coef=hp["estim_lr_coef"], weight_decay=hp["weight_decay"],
                              safeguard_warmup=hp["safeguard_warmup"])


class DAdaptAdamW(_Optimizer):
    r"""D-Adaptation AdamW (:func:`fromax.dadapt_adamw`)."""

    _global_reduce = True

    def __init__(self, lr: LR = 1.0, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, estim_lr0: float = 1e-6,
                 weight_decay: float = 0.0, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("DAdaptAdamW", betas), eps=float(eps),
                         estim_lr0=float(estim_lr0))

    def _algorithm(self, lr, hp):
        return fromax.dadapt_adamw(lr, betas=hp["betas"], eps=hp["eps"], estim_lr0=hp["estim_lr0"], weight_decay=hp["weight_decay"])


class COCOB(_Optimizer):
    r"""COCOB-Backprop, coin betting (:func:`fromax.cocob`): per-coordinate, no global sums."""

    def __init__(self, lr: LR = 1.0, alpha: float = 100.0, eps: float = 1e-8, weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, alpha=float(alpha), eps=float(eps))

    def _algorithm(self, lr, hp):
        return fromax.cocob(lr, alpha=hp["alpha"], eps=hp["eps"], weight_decay=hp["weight_decay"])


class Mechanic(_Optimizer):
    r"""Mechanic (:func:`fromax.mechanize`): learns a global scale for ``base_optimizer``'s steps.

    ``base_optimizer=None``: fromax's AdamW at ``lr`` (without weight decay: Mechanic has its own),
    following the scheduler. A given base optimizer carries its own rate; the scheduler then
    multiplies the steps by ``lr_t / base_lr``.
    """

    _global_reduce = True

    def __init__(self, base_optimizer: Optional[optax.GradientTransformation] = None, lr: LR = 1e-3, weight_decay: float = 0.01,
                 eps: float = 1e-8, s_init: float = 1e-6, num_betas: int = 6, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        if base_optimizer is not None:
            _check_transformation("Mechanic", "base_optimizer", base_optimizer)
        self.base_optimizer = base_optimizer
        self._lr_as_ratio = base_optimizer is not None
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, eps=float(eps), s_init=float(s_init),
                         num_betas=int(num_betas))

    def _algorithm(self, lr, hp):
        base = self.base_optimizer if self.base_optimizer is not None else fromax.adamw(lr, weight_decay=0.0)
        return fromax.mechanize(base, weight_decay=hp["weight_decay"], eps=hp["eps"], s_init=hp["s_init"], num_betas=hp["num_betas"])


class MoMo(_Optimizer):
    r"""MoMo, model-based momentum (:func:`fromax.momo`): Polyak-type step from the loss; pass it as
    ``opt.step(grads, value=loss)``."""

    _global_reduce = True

    def __init__(self, lr: LR = 1.0, beta: float = 0.9, lower_bound: float = 0.0, weight_decay: float = 0.0,
                 adapt_lower_bound: bool = False, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, beta=float(beta), lower_bound=float(lower_bound),
                         adapt_lower_bound=bool(adapt_lower_bound))

    def _algorithm(self, lr, hp):
        return fromax.momo(lr, beta=hp["beta"], lower_bound=hp["lower_bound"], weight_decay=hp["weight_decay"],
                           adapt_lower_bound=hp["adapt_lower_bound"])


class MoMoAdam(_Optimizer):
    r"""MoMo-Adam (:func:`fromax.momo_adam`); pass the loss as ``opt.step(grads, value=loss)``."""

    _global_reduce = True

    def __init__(self, lr: LR = 1e-2, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, lower_bound: float = 0.0,
                 weight_decay: float = 0.0, adapt_lower_bound: bool = False, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("MoMoAdam", betas), eps=float(eps),
                         lower_bound=float(lower_bound), adapt_lower_bound=bool(adapt_lower_bound))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        return fromax.momo_adam(lr, b1=b1, b2=b2, eps=hp["eps"], lower_bound=hp["lower_bound"], weight_decay=hp["weight_decay"],
                                adapt_lower_bound=hp["adapt_lower_bound"])


class ScheduleFree(_Optimizer):
    r"""Schedule-Free AdamW (Defazio et al. 2024; :func:`fromax.schedule_free` around fromax's AdamW with
    :math:`\beta_1 = 0`): no decay schedule needed. ``warmup_steps`` ramps the rate linearly from 0.
    The parameters it holds are the training point :math:`y`; :meth:`eval_params` gives the averaged
    :math:`x` to evaluate with.
    """

    def __init__(self, lr: LR = 2.5e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 warmup_steps: Optional[int] = None, weight_lr_power: float = 2.0, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("ScheduleFree", betas), eps=float(eps),
                         warmup_steps=warmup_steps, weight_lr_power=float(weight_lr_power))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        warm = hp["warmup_steps"]
        rate = lr if not warm else (lambda count: lr(count) * optax.linear_schedule(0.0, 1.0, warm)(count))
        base = fromax.adamw(rate, b1=0.0, b2=b2, eps=hp["eps"], weight_decay=hp["weight_decay"])
        return fromax.schedule_free(base, rate, b1=b1, weight_lr_power=hp["weight_lr_power"])

    def eval_params(self) -> list:
        """The averaged parameters :math:`x` of every group, in their registered structures."""
        return [fromax.schedule_free_eval_params(s.value, g.values()) for s, g in zip(self.param_groups_opt_states, self._groups)]


class HypergradientAdamW(_Optimizer):
    r"""AdamW whose learning rate is learned by hypergradient descent (:func:`fromax.hypergradient_adamw`);
    ``lr`` is the initial rate. A scheduler multiplies the steps by ``lr_t / base_lr``."""

    _global_reduce = True
    _lr_as_ratio = True

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 beta_hyper: float = 1e-7, lr_min: float = 1e-6, lr_max: float = 1.0, log_scale: bool = False,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("HypergradientAdamW", betas),
                         eps=float(eps), beta_hyper=float(beta_hyper), lr_min=float(lr_min), lr_max=float(lr_max),
                         log_scale=bool(log_scale))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        return fromax.hypergradient_adamw(lr, b1=b1, b2=b2, eps=hp["eps"], weight_decay=hp["weight_decay"],
                                          beta_hyper=hp["beta_hyper"], lr_min=hp["lr_min"], lr_max=hp["lr_max"],
                                          log_scale=hp["log_scale"])


class AutoHypergradientAdamW(_Optimizer):
    r"""AdamW with a self-tuned hypergradient learning rate, optional momentum adaptation and surprise
    signal (:func:`fromax.auto_hypergradient_adamw`; the current lr, beta1 and surprise gain are in
    ``opt.opt_state.value``). A scheduler multiplies the steps by ``lr_t / base_lr``."""

    _global_reduce = True
    _lr_as_ratio = True

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 hyper_lr: float = 0.01, hyper_lr_beta: float = 1.0, lr_min: float = 1e-6, lr_max: float = 1.0,
                 adapt_momentum: bool = False, track_surprise: bool = False, surprise_gamma: float = 0.9,
                 surprise_alpha: float = 0.1, trauma_threshold: float = 0.5, beta_min: float = 0.5, beta_max: float = 0.9995,
                 warmup_steps: int = 10, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("AutoHypergradientAdamW", betas),
                         eps=float(eps), hyper_lr=float(hyper_lr), hyper_lr_beta=float(hyper_lr_beta), lr_min=float(lr_min),
                         lr_max=float(lr_max), adapt_momentum=bool(adapt_momentum), track_surprise=bool(track_surprise),
                         surprise_gamma=float(surprise_gamma), surprise_alpha=float(surprise_alpha),
                         trauma_threshold=float(trauma_threshold), beta_min=float(beta_min), beta_max=float(beta_max),
                         warmup_steps=int(warmup_steps))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        keys = ("eps", "hyper_lr", "hyper_lr_beta", "lr_min", "lr_max", "adapt_momentum", "track_surprise", "surprise_gamma",
                "surprise_alpha", "trauma_threshold", "beta_min", "beta_max", "warmup_steps", "weight_decay")
        return fromax.auto_hypergradient_adamw(lr, b1=b1, b2=b2, **{k: hp[k] for k in keys})
