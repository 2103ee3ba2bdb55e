"""The 23 optimizers of ``braintools.optim`` 0.3.0: same names, signatures and defaults.

Each class is its algorithm as one transformation per parameter group (``_algorithm``); the base
class adds clipping, groups, schedules and state. Where fromax has a fused kernel (AdamW, Lamb, Lars,
Novograd, Fromage; Adam without weight decay) the step runs it; the others are optax's
transformations. ``lr`` below is the group's learning rate (a schedule read from the optimizer's
learning-rate State).
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple, Union

import optax

import fromax
from fromax.optim import _transforms
from fromax._validate import check_nonnegative, check_positive
from fromax.optim._base import OptaxOptimizer, _check_transformation
from fromax.optim._schedulers import LRScheduler

__all__ = [
    "SGD", "Momentum", "MomentumNesterov", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "Adamax", "Nadam", "RAdam",
    "Lamb", "Lars", "Lookahead", "Yogi", "LBFGS", "Rprop", "Adafactor", "AdaBelief", "Lion", "SM3", "Novograd", "Fromage",
]

LR = Union[float, LRScheduler]
Clip = Optional[float]


def _l2(wd: float) -> list:
    """Coupled weight decay: ``g + wd * p`` before the algorithm (PyTorch's ``weight_decay`` for SGD, Adam...)."""
    return [optax.add_decayed_weights(wd)] if wd > 0 else []


def _betas(who: str, betas: Tuple[float, float]) -> Tuple[float, float]:
    b1, b2 = betas
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"{who}: betas must be in [0, 1), got {betas}")
    return float(b1), float(b2)


class _Optimizer(OptaxOptimizer):
    """Shared constructor: store the class's hyperparameters as ``defaults`` (what a parameter group
    may override), then let the base class build group 0."""

    def __init__(self, lr: LR, weight_decay: float, grad_clip_norm: Clip, grad_clip_value: Clip, **hyperparameters: Any):
        self.defaults = dict(hyperparameters)
        for k, v in hyperparameters.items():
            setattr(self, k, v)
        super().__init__(lr=lr, weight_decay=weight_decay, grad_clip_norm=grad_clip_norm, grad_clip_value=grad_clip_value)


class SGD(_Optimizer):
    r"""SGD: :math:`b \leftarrow \mu b + (g + \lambda W)` (if ``momentum``), :math:`W \leftarrow W - \eta b`
    (Nesterov: :math:`W \leftarrow W - \eta(g + \lambda W + \mu b)`); :math:`\lambda` = ``weight_decay`` (coupled).

    Examples
    --------
    >>> import brainstate, jax.numpy as jnp, fromax.optim as optim
    >>> w = brainstate.ParamState(jnp.ones(2))
    >>> opt = optim.SGD(lr=0.5, momentum=0.9).register_trainable_weights({"w": w})
    >>> opt.step({"w": jnp.ones(2)})
    """

    def __init__(self, lr: LR = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        check_nonnegative("SGD", momentum=momentum)
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, momentum=float(momentum), nesterov=bool(nesterov))

    def _algorithm(self, lr, hp):
        trace = [optax.trace(decay=hp["momentum"], nesterov=hp["nesterov"])] if hp["momentum"] > 0 else []
        return optax.chain(*_l2(hp["weight_decay"]), *trace, optax.scale_by_learning_rate(lr))


class Momentum(SGD):
    r"""SGD with heavy-ball momentum (default 0.9): :math:`b \leftarrow \mu b + g`, :math:`W \leftarrow W - \eta b`."""

    def __init__(self, lr: LR = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        super().__init__(lr, momentum, weight_decay, False, grad_clip_norm, grad_clip_value)


class MomentumNesterov(SGD):
    r"""SGD with Nesterov momentum (default 0.9): :math:`W \leftarrow W - \eta (g + \mu b)`."""

    def __init__(self, lr: LR = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        super().__init__(lr, momentum, weight_decay, True, grad_clip_norm, grad_clip_value)


class Adam(_Optimizer):
    r"""Adam with coupled L2 weight decay (PyTorch's ``Adam``): :math:`g \leftarrow g + \lambda W`, then
    :math:`W \leftarrow W - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)`; ``amsgrad`` uses :math:`\max_t v`.
    Without weight decay or amsgrad the step is fromax's fused AdamW kernel. ``beta1``/``beta2``
    override ``betas`` (braintools' aliases)."""

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), beta1: float = None, beta2: float = None,
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        if beta1 is not None or beta2 is not None:
            warnings.warn("Adam: beta1 and beta2 are deprecated; use betas=(beta1, beta2)", DeprecationWarning, stacklevel=2)
        betas = _betas("Adam", (betas[0] if beta1 is None else beta1, betas[1] if beta2 is None else beta2))
        check_positive("Adam", eps=eps)
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=betas, eps=float(eps), amsgrad=bool(amsgrad))

    def _algorithm(self, lr, hp):
        (b1, b2), eps, wd = hp["betas"], hp["eps"], hp["weight_decay"]
        if hp["amsgrad"]:
            return optax.chain(*_l2(wd), optax.scale_by_amsgrad(b1=b1, b2=b2, eps=eps), optax.scale_by_learning_rate(lr))
        if wd > 0:
            return optax.chain(*_l2(wd), optax.scale_by_adam(b1=b1, b2=b2, eps=eps), optax.scale_by_learning_rate(lr))
        return fromax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=0.0)


class AdamW(_Optimizer):
    r"""AdamW (decoupled weight decay): :math:`W \leftarrow W - \eta(\hat m / (\sqrt{\hat v} + \epsilon) + \lambda W)`
    (``optax.adamw``), on fromax's fused kernel."""

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        check_positive("AdamW", eps=eps)
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("AdamW", betas), eps=float(eps))

    def _algorithm(self, lr, hp):
        (b1, b2) = hp["betas"]
        return fromax.adamw(lr, b1=b1, b2=b2, eps=hp["eps"], weight_decay=hp["weight_decay"])


class Adagrad(_Optimizer):
    r"""Adagrad (PyTorch's): :math:`s \leftarrow s + g^2`, :math:`W \leftarrow W - \frac{\eta}{1 + (t-1)\,\delta}\,
    g / (\sqrt{s} + \epsilon)` with :math:`\delta` = ``lr_decay``, coupled weight decay."""

    def __init__(self, lr: LR = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        check_nonnegative("Adagrad", lr_decay=lr_decay, initial_accumulator_value=initial_accumulator_value)
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, lr_decay=float(lr_decay),
                         initial_accumulator_value=float(initial_accumulator_value), eps=float(eps))

    def _algorithm(self, lr, hp):
        decay = hp["lr_decay"]
        parts = [*_l2(hp["weight_decay"]), optax.scale_by_rss(initial_accumulator_value=hp["initial_accumulator_value"], eps=hp["eps"])]
        if decay:
            parts.append(optax.scale_by_schedule(lambda count: 1.0 / (1.0 + count * decay)))
        return optax.chain(*parts, optax.scale_by_learning_rate(lr))


class Adadelta(_Optimizer):
    r"""Adadelta (Zeiler 2012; ``optax.scale_by_adadelta``), step scaled by ``lr``, coupled weight decay."""

    def __init__(self, lr: LR = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, rho=float(rho), eps=float(eps))

    def _algorithm(self, lr, hp):
        return optax.chain(*_l2(hp["weight_decay"]), optax.scale_by_adadelta(rho=hp["rho"], eps=hp["eps"]), optax.scale_by_learning_rate(lr))


class RMSprop(_Optimizer):
    r"""RMSprop: :math:`v \leftarrow \alpha v + (1-\alpha) g^2`, step :math:`g / (\sqrt{v} + \epsilon)` (``centered``:
    minus the squared mean), optional momentum on the step, coupled weight decay."""

    def __init__(self, lr: LR = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, alpha=float(alpha), eps=float(eps),
                         momentum=float(momentum), centered=bool(centered))

    def _algorithm(self, lr, hp):
        scale = (optax.scale_by_stddev if hp["centered"] else optax.scale_by_rms)(decay=hp["alpha"], eps=hp["eps"])
        trace = [optax.trace(decay=hp["momentum"])] if hp["momentum"] > 0 else []
        return optax.chain(*_l2(hp["weight_decay"]), scale, *trace, optax.scale_by_learning_rate(lr))


def _per_slice(opt: _Optimizer) -> dict:
    """``stacked_axes`` for the fromax optimizer, where the class takes it (those with per-tensor
    quantities: Fromage, Lamb, Lars, Novograd) and it is given."""
    axes = getattr(opt, "stacked_axes", None)
    return {} if axes is None else {"stacked_axes": axes}


def _betas_eps_class(who: str, build, default_lr: float = 1e-3, default_eps: float = 1e-8):
    """A class whose signature is braintools' ``(lr, betas, eps, weight_decay, clipping)`` with its
    defaults, and whose algorithm is ``build(lr, b1, b2, eps, weight_decay)``."""

    class Variant(_Optimizer):
        def __init__(self, lr: LR = default_lr, betas: Tuple[float, float] = (0.9, 0.999), eps: float = default_eps,
                     weight_decay: float = 0.0, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
            super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas(who, betas), eps=float(eps))

        def _algorithm(self, lr, hp):
            b1, b2 = hp["betas"]
            return build(lr, b1, b2, hp["eps"], hp["weight_decay"], **_per_slice(self))

    Variant.__name__ = Variant.__qualname__ = who
    return Variant


def _adam_like(who: str, scale_by, **defaults):
    """An Adam variant: coupled L2, then ``optax.scale_by_<x>(b1, b2, eps)``, then the learning rate."""
    return _betas_eps_class(
        who, lambda lr, b1, b2, eps, wd: optax.chain(*_l2(wd), scale_by(b1=b1, b2=b2, eps=eps), optax.scale_by_learning_rate(lr)),
        **defaults)


class Adamax(_adam_like("Adamax", optax.scale_by_adamax, default_lr=2e-3)):
    r"""Adamax: Adam with the infinity norm, :math:`u \leftarrow \max(\beta_2 u, |g|)` (``optax.scale_by_adamax``)."""


class RAdam(_adam_like("RAdam", optax.scale_by_radam)):
    r"""Rectified Adam (Liu et al. 2020; ``optax.scale_by_radam``)."""


class Yogi(_adam_like("Yogi", optax.scale_by_yogi, default_eps=1e-3)):
    r"""Yogi: :math:`v \leftarrow v - (1-\beta_2)\,\mathrm{sign}(v - g^2) g^2` (``optax.scale_by_yogi``)."""


class AdaBelief(_adam_like("AdaBelief", optax.scale_by_belief, default_eps=1e-16)):
    r"""AdaBelief: second moment of :math:`g - m` (``optax.scale_by_belief``)."""


class Nadam(_Optimizer):
    r"""NAdam with scheduled momentum :math:`\mu_t = \beta_1(1 - \frac12 0.96^{t\psi})` (PyTorch's ``NAdam``;
    :func:`fromax.optim._transforms.scale_by_nadam` has the math), coupled weight decay."""

    def __init__(self, lr: LR = 2e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_decay: float = 4e-3, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("Nadam", betas), eps=float(eps),
                         momentum_decay=float(momentum_decay))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        nadam = _transforms.scale_by_nadam(b1, b2, hp["eps"], hp["momentum_decay"])
        return optax.chain(*_l2(hp["weight_decay"]), nadam, optax.scale_by_learning_rate(lr))


class Lamb(_betas_eps_class("Lamb", lambda lr, b1, b2, eps, wd, **kw: fromax.lamb(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, **kw),
                            default_eps=1e-6)):
    r"""LAMB (``optax.lamb``, fused): :math:`u = \hat m/(\sqrt{\hat v}+\epsilon) + \lambda W`, then the trust
    ratio :math:`\|W\|/\|u\|` per tensor, applied **after** Adam, :math:`W \leftarrow W - \eta \frac{\|W\|}{\|u\|} u`.
    ``stacked_axes`` (fromax's, keyword-only): the trust ratio per layer of stacked layers (:func:`fromax.lamb`)."""

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None, *, stacked_axes: Any = None):
        self.stacked_axes = stacked_axes
        super().__init__(lr, betas, eps, weight_decay, grad_clip_norm, grad_clip_value)


class Lars(_Optimizer):
    r"""LARS (``optax.lars``, fused): :math:`u = g + \lambda W` scaled by the trust ratio
    :math:`c\|W\|/(\|u\| + \epsilon)` per tensor, times :math:`\eta`, through momentum. ``stacked_axes``
    (fromax's, keyword-only): the trust ratio per layer of stacked layers (:func:`fromax.lars`)."""

    def __init__(self, lr: LR = 1.0, momentum: float = 0.9, weight_decay: float = 0.0, trust_coefficient: float = 0.001,
                 eps: float = 1e-8, grad_clip_norm: Clip = None, grad_clip_value: Clip = None, *, stacked_axes: Any = None):
        self.stacked_axes = stacked_axes
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, momentum=float(momentum),
                         trust_coefficient=float(trust_coefficient), eps=float(eps))

    def _algorithm(self, lr, hp):
        return fromax.lars(lr, weight_decay=hp["weight_decay"], trust_coefficient=hp["trust_coefficient"], eps=hp["eps"],
                           momentum=hp["momentum"], **_per_slice(self))


class Lookahead(_Optimizer):
    r"""Lookahead around ``base_optimizer`` (:func:`fromax.optim._transforms.lookahead`): every
    ``sync_period`` steps, slow weights :math:`\phi \leftarrow \phi + \alpha(\theta - \phi)` and
    :math:`\theta \leftarrow \phi`.

    The base optimizer carries its own learning rate; this class's ``lr`` schedule multiplies the
    fast steps by ``lr_t / base_lr`` (1 with a constant ``lr``), so a scheduler acts on Lookahead
    too (braintools ignores it). ``weight_decay`` is coupled, before the base optimizer.
    """

    def __init__(self, base_optimizer: optax.GradientTransformation, sync_period: int = 5, alpha: float = 0.5, lr: LR = 1e-3,
                 weight_decay: float = 0.0, grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        _check_transformation("Lookahead", "base_optimizer", base_optimizer)
        self.base_optimizer = base_optimizer
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, sync_period=int(sync_period), alpha=float(alpha))

    def _build(self, group, hp):
        # The schedule scales the fast steps, inside Lookahead (the slow update follows them).
        fast = optax.chain(*_l2(hp["weight_decay"]), self.base_optimizer, self._lr_ratio(group))
        return _transforms.lookahead(fast, hp["sync_period"], hp["alpha"])


class LBFGS(_Optimizer):
    r"""L-BFGS (``optax.lbfgs``) with memory ``memory_size``; ``linesearch``: ``None`` (a fixed step
    ``lr``), ``'zoom'``, ``'backtracking'`` or an optax line search. With a line search, pass
    ``value=loss`` and ``value_fn=f`` to :meth:`step`, ``f`` taking the registered parameters' values
    in their registered structure. The curvature pairs span every group."""

    _global_reduce = True
    _pass_grad = True

    def __init__(self, lr: LR = 1.0, memory_size: int = 10, scale_init_precond: bool = True, linesearch: Any = None,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        if linesearch is None:
            search = optax.identity()
        elif linesearch == "zoom":
            search = optax.scale_by_zoom_linesearch(max_linesearch_steps=100)
        elif linesearch == "backtracking":
            search = optax.scale_by_backtracking_linesearch(max_backtracking_steps=100)
        elif isinstance(linesearch, optax.GradientTransformation):
            search = linesearch
        else:
            raise ValueError(f"LBFGS: Unknown linesearch method: {linesearch!r} (use None, 'zoom', 'backtracking' or an optax line search)")
        self._search = search
        super().__init__(lr, 0.0, grad_clip_norm, grad_clip_value, memory_size=int(memory_size),
                         scale_init_precond=bool(scale_init_precond), linesearch=linesearch)

    def _algorithm(self, lr, hp):
        return optax.lbfgs(learning_rate=lr, memory_size=hp["memory_size"], scale_init_precond=hp["scale_init_precond"],
                           linesearch=self._search)


class Rprop(_Optimizer):
    r"""Rprop (``optax.rprop``): per-element step sizes grown by ``etas[1]`` while the gradient keeps its
    sign, shrunk by ``etas[0]`` when it flips, within ``step_sizes``; ``lr`` is the initial step size.
    A scheduler multiplies the steps by ``lr_t / base_lr`` (braintools ignores it)."""

    _lr_as_ratio = True

    def __init__(self, lr: LR = 1e-2, etas: Tuple[float, float] = (0.5, 1.2), step_sizes: Tuple[float, float] = (1e-6, 50.0),
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, 0.0, grad_clip_norm, grad_clip_value, etas=tuple(etas), step_sizes=tuple(step_sizes))

    def _algorithm(self, lr, hp):
        (down, up), (lo, hi) = hp["etas"], hp["step_sizes"]
        return optax.rprop(learning_rate=lr, eta_minus=down, eta_plus=up, min_step_size=lo, max_step_size=hi)


class Adafactor(_Optimizer):
    r"""Adafactor with every argument honoured (braintools ignores ``clip_threshold``, ``beta1`` and
    ``eps[1]``): factored :math:`\hat v` (:math:`\epsilon_1` = ``eps[0]``), update clipped to RMS
    ``clip_threshold``, times :math:`\eta \max(\epsilon_2, \mathrm{RMS}(W))` (:math:`\epsilon_2` = ``eps[1]``),
    momentum ``beta1`` if given, decoupled weight decay :math:`W \leftarrow W - \lambda W` (not scaled by
    the lr, as ``optax.adafactor``'s ``weight_decay_rate``). ``lr=None`` means 1e-3 (braintools)."""

    def __init__(self, lr: Optional[LR] = None, eps: Tuple[float, float] = (1e-30, 1e-3), clip_threshold: float = 1.0,
                 decay_rate: float = 0.8, beta1: Optional[float] = None, weight_decay: float = 0.0, factored: bool = True,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(1e-3 if lr is None else lr, weight_decay, grad_clip_norm, grad_clip_value, eps=tuple(eps),
                         clip_threshold=clip_threshold, decay_rate=float(decay_rate), beta1=beta1, factored=bool(factored))

    def _algorithm(self, lr, hp):
        return _transforms.adafactor(lr, hp["eps"], hp["clip_threshold"], hp["decay_rate"], hp["beta1"], hp["weight_decay"],
                                     hp["factored"])


class Lion(_Optimizer):
    r"""Lion (``optax.lion``): :math:`W \leftarrow W - \eta(\mathrm{sign}(\beta_1 m + (1-\beta_1) g) + \lambda W)`,
    :math:`m \leftarrow \beta_2 m + (1-\beta_2) g`."""

    def __init__(self, lr: LR = 1e-4, betas: Tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, betas=_betas("Lion", betas))

    def _algorithm(self, lr, hp):
        b1, b2 = hp["betas"]
        wd = [optax.add_decayed_weights(hp["weight_decay"])] if hp["weight_decay"] > 0 else []
        return optax.chain(optax.scale_by_lion(b1=b1, b2=b2), *wd, optax.scale_by_learning_rate(lr))


class SM3(_Optimizer):
    r"""SM3 (Anil et al. 2019; ``optax.scale_by_sm3`` with ``b1 = momentum``), coupled weight decay."""

    def __init__(self, lr: LR = 1.0, momentum: float = 0.9, eps: float = 1e-8, weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None):
        super().__init__(lr, weight_decay, grad_clip_norm, grad_clip_value, momentum=float(momentum), eps=float(eps))

    def _algorithm(self, lr, hp):
        return optax.chain(*_l2(hp["weight_decay"]), optax.scale_by_sm3(b1=hp["momentum"], b2=1.0, eps=hp["eps"]),
                           optax.scale_by_learning_rate(lr))


class Novograd(_betas_eps_class("Novograd", lambda lr, b1, b2, eps, wd, **kw: fromax.novograd(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, **kw))):
    r"""NovoGrad (``optax.novograd``, fused): per-tensor second moment :math:`v \leftarrow \beta_2 v + (1-\beta_2)\|g\|^2`,
    :math:`m \leftarrow \beta_1 m + g/(\sqrt{v}+\epsilon) + \lambda W`, :math:`W \leftarrow W - \eta m`.
    ``stacked_axes`` (fromax's, keyword-only): the moment per layer of stacked layers (:func:`fromax.novograd`)."""

    def __init__(self, lr: LR = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 grad_clip_norm: Clip = None, grad_clip_value: Clip = None, *, stacked_axes: Any = None):
        self.stacked_axes = stacked_axes
        super().__init__(lr, betas, eps, weight_decay, grad_clip_norm, grad_clip_value)


class Fromage(_Optimizer):
    r"""Fromage (Bernstein et al. 2020), the real one, fused: per tensor
    :math:`W \leftarrow \frac{1}{\sqrt{1+\eta^2}}\big(W - \eta \frac{\|W\|}{\|g\|} g\big)`, optionally
    capping :math:`\|W\| \le` ``p_bound`` times its initial norm (:func:`fromax.fromage`).

    The learning rate follows schedulers (braintools' Fromage wraps ``optax.fromage`` at a frozen
    rate). ``momentum`` exists for braintools compatibility: Fromage has none, and a non-zero value
    warns and is ignored. ``stacked_axes`` (fromax's, keyword-only): per-layer norms on stacked layers
    (:func:`fromax.fromage`).
    """

    def __init__(self, lr: LR = 0.01, p_bound: Optional[float] = None, momentum: float = 0.0, grad_clip_norm: Clip = None,
                 grad_clip_value: Clip = None, *, stacked_axes: Any = None):
        self.stacked_axes = stacked_axes
        if momentum:
            warnings.warn("fromax.optim.Fromage: Fromage has no momentum; momentum is ignored", UserWarning, stacklevel=2)
        if p_bound is not None:
            check_positive("Fromage", p_bound=p_bound)
        super().__init__(lr, 0.0, grad_clip_norm, grad_clip_value, p_bound=p_bound)

    def _algorithm(self, lr, hp):
        return fromax.fromage(lr, p_bound=hp["p_bound"], **_per_slice(self))
