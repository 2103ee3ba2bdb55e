"""``OptaxOptimizer``: the brainstate-style object API over an optax / fromax transformation.

One object owns parameter groups (a registered pytree of ``brainstate.State`` each), one optimizer
state per group, the learning rates (one float32 State holding a rate per group) and a step count,
all in ``OptimState``s, so a train step jitted with ``brainstate.transform.jit`` threads them like
the parameters. A step runs each group's transformation through :func:`fromax.step`: for a fromax
transformation that is the fused, in-place kernel; for any other it is ``update`` + ``apply_updates``.

Where this differs from ``braintools.optim`` 0.3.0 (on purpose: braintools is wrong there):

- every optimizer follows its LR scheduler (braintools' Fromage, Rprop and Lookahead freeze the
  initial rate);
- a group added with :meth:`add_param_group` runs the optimizer's own algorithm with its own
  hyperparameters (braintools runs Adam for every added group);
- gradient clipping by global norm, and the global sums of global-reduction optimizers (DoG,
  Prodigy, MoMo, ...), span all groups the optimizer owns (braintools reduces per group);
- gradients must match the registered parameters: a gradient for an unknown parameter, or a missing
  one, is an error (braintools silently drops both).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import brainstate
import jax
import jax.numpy as jnp
import optax

from fromax._validate import NONNEGATIVE, check_nonnegative, check_positive
from fromax.optim._params import ParamStates, Registered, check_no_unknown
from fromax.optim._schedulers import ConstantLR, LRScheduler, _as_floats
from fromax.optim._state import OptimState, count_array, lr_array
from fromax.step import step as fused_step

Schedule = Callable[[Any], Any]


class GroupLr:
    """A group's learning rate as braintools exposes it, a State-like ``.value`` that reads and writes
    the rate now (kept in the optimizer's one learning-rate State, so the jitted step reads it as
    data): ``opt._current_lr`` is group 0's and ``opt.param_groups[i]["lr"]`` group ``i``'s.
    A scheduler's ``step()`` overwrites what was written, as in braintools."""

    def __init__(self, optimizer: "OptaxOptimizer", group: int):
        self._optimizer = optimizer
        self._group = group

    @property
    def value(self):
        return self._optimizer._lrs.value[self._group]

    @value.setter
    def value(self, value) -> None:
        opt = self._optimizer
        check_learning_rate(type(opt).__name__, value)  # a traced rate is checked when concrete
        opt._lrs.value = lr_array(opt._lrs.value.at[self._group].set(value))

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"GroupLr(group={self._group}, value={float(self.value)!r})"


class ParamGroup(dict):
    """One entry of ``param_groups``: braintools' dict (``params``, ``lr``, ``weight_decay``, the
    group's hyperparameters). Group 0's ``lr`` is the live :class:`GroupLr` (braintools'
    ``_current_lr`` State); an added group's is a float, as in braintools. Assigning ``lr`` sets the
    rate the next step applies (PyTorch's ``group["lr"] = x``; braintools ignores it)."""

    def __init__(self, optimizer: "OptaxOptimizer", index: int, entries: dict):
        super().__init__(entries)
        self._optimizer, self._index = optimizer, index

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "lr" and not isinstance(value, GroupLr):
            GroupLr(self._optimizer, self._index).value = value
            if self._index == 0:
                return  # group 0's entry stays the live State-like
            value = float(value)
        super().__setitem__(key, value)


def check_learning_rate(who: str, lr: Any) -> None:
    """A learning rate: the NONNEGATIVE rule (a finite scalar >= 0), in braintools' words ("Invalid
    learning rate") that code and tests match on."""
    try:
        NONNEGATIVE(who, "lr", lr)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{who}: Invalid learning rate: {lr!r} ({str(e).removeprefix(who + ': ')})") from None


def _check_transformation(who: str, what: str, tx: Any) -> None:
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(f"{who}: {what} must be an optax.GradientTransformation, got {type(tx).__name__}")


class OptaxOptimizer(brainstate.graph.Node):
    r"""Base class of :mod:`fromax.optim`: a PyTorch-like optimizer over brainstate States.

    Parameters
    ----------
    tx : optax.GradientTransformation, optional
        The whole update rule. ``None``: the class's own algorithm (for this base class, Adam with
        coupled L2 weight decay, as braintools). A given ``tx`` is used as is; a scheduler attached
        to ``lr`` then multiplies its steps by ``lr_t / base_lr``.
    lr : float or LRScheduler
        Learning rate, or a scheduler (its ``base_lr`` is the optimizer's).
    weight_decay : float
        Weight decay; whether coupled (L2 added to the gradient) or decoupled is the algorithm's, as
        each class documents.
    grad_clip_norm, grad_clip_value : float, optional
        Clip the gradients first: to global norm ``grad_clip_norm`` over **all** groups, then each
        element to ``[-grad_clip_value, grad_clip_value]``.

    Examples
    --------
    >>> import brainstate, jax.numpy as jnp, fromax.optim as optim
    >>> w = brainstate.ParamState(jnp.ones(3))
    >>> opt = optim.SGD(lr=0.1).register_trainable_weights({"w": w})
    >>> opt.step({"w": jnp.ones(3)})
    >>> w.value
    Array([0.9, 0.9, 0.9], dtype=float32)
    """

    # One transformation over every group, so that its global sums span them all (a group's lr
    # then scales its share of the update, relative to group 0's).
    _global_reduce = False
    # The algorithm takes a constant lr; a schedule multiplies the step by lr_t / base_lr.
    _lr_as_ratio = False
    # Extra args the step passes to the transformation: LBFGS's line search wants the gradient.
    _pass_grad = False

    graph_invisible_attrs = ("tx", "_txs", "_tx_given", "_groups", "param_groups", "_schedulers", "_lr_scheduler")

    def __init__(
        self,
        tx: Optional[optax.GradientTransformation] = None,
        lr: Union[float, LRScheduler] = 1e-3,
        weight_decay: float = 0.0,
        grad_clip_norm: Optional[float] = None,
        grad_clip_value: Optional[float] = None,
    ):
        who = type(self).__name__
        if tx is not None:
            _check_transformation(who, "tx", tx)
        if not isinstance(lr, LRScheduler):
            if isinstance(lr, bool) or not isinstance(lr, (int, float)):
                raise TypeError(f"{who}: lr must be a float or an LRScheduler, got {type(lr).__name__}")
            check_learning_rate(who, lr)
        check_nonnegative(who, weight_decay=weight_decay)
        check_positive(who, grad_clip_norm=grad_clip_norm, grad_clip_value=grad_clip_value)
        self._tx_given = tx
        self.weight_decay = float(weight_decay)
        self.grad_clip_norm = grad_clip_norm
        self.grad_clip_value = grad_clip_value
        if not hasattr(self, "defaults"):
            self.defaults = {}
        self.defaults = {"lr": None, "weight_decay": self.weight_decay, **self.defaults}
        scheduler = lr if isinstance(lr, LRScheduler) else ConstantLR(float(lr), factor=1.0, total_iters=0)
        self._base_lr = scheduler.base_lrs[0]
        self._group_base_lrs = [self._base_lr]
        self.step_count = OptimState(count_array(0))
        self._lrs = OptimState(lr_array([self._base_lr]))
        self._groups: list[Registered] = []
        self._txs: list[optax.GradientTransformation] = []
        self.param_groups: list[dict] = []
        self.param_groups_opt_states: list[OptimState] = []
        self._schedulers: list[LRScheduler] = []
        self._lr_scheduler = scheduler
        scheduler.attach_optimizer(self)
        self.tx = self._build(0, self.defaults)
        self.opt_state: Optional[OptimState] = None

    # ---- the algorithm -----------------------------------------------------------------------
    def _algorithm(self, lr: Any, hp: dict) -> optax.GradientTransformation:
        """This class's transformation for one group: ``lr`` is a schedule (count -> rate), or the
        group's constant base rate for ``_lr_as_ratio`` classes; ``hp`` its hyperparameters."""
        wd = hp["weight_decay"]
        return optax.chain(
            *([optax.add_decayed_weights(wd)] if wd > 0 else []), optax.scale_by_adam(), optax.scale_by_learning_rate(lr)
        )

    def _lr_schedule(self, group: int) -> Schedule:
        return lambda count: self._lrs.value[group]

    def _build(self, group: int, hp: dict) -> optax.GradientTransformation:
        base = self._group_base_lrs[group]
        if self._tx_given is not None:
            algo, ratio = self._tx_given, True
        elif self._lr_as_ratio:
            algo, ratio = self._algorithm(base, hp), True
        else:
            algo, ratio = self._algorithm(self._lr_schedule(group), hp), False
        if not ratio:
            return algo
        return optax.chain(algo, self._lr_ratio(group))

    def _lr_ratio(self, group: int) -> optax.GradientTransformation:
        """Scales steps by ``lr_t / base_lr`` of ``group``: how a scheduler acts on an algorithm
        whose own rate is fixed (a given tx, Rprop's initial step size, a wrapped optimizer)."""
        lr, base = self._lr_schedule(group), self._group_base_lrs[group]
        return optax.scale_by_schedule(lambda count: lr(count) / base if base > 0 else 0.0)

    # ---- learning rates ----------------------------------------------------------------------
    @property
    def lr(self) -> LRScheduler:
        """The main scheduler (a ``ConstantLR`` when ``lr`` was a float)."""
        return self._lr_scheduler

    @property
    def lr_scheduler(self) -> LRScheduler:
        return self._lr_scheduler

    @property
    def schedulers(self) -> list:
        return self._schedulers

    @property
    def base_lr(self) -> float:
        return self._base_lr

    @property
    def current_lr(self):
        """Group 0's learning rate now (settable: holds until a scheduler steps)."""
        return self._lrs.value[0]

    @current_lr.setter
    def current_lr(self, value) -> None:
        GroupLr(self, 0).value = value

    @property
    def _current_lr(self) -> GroupLr:
        """braintools' State behind ``current_lr``: ``opt._current_lr.value`` reads and writes group 0's rate."""
        return GroupLr(self, 0)

    @property
    def param_states(self) -> ParamStates:
        """The registered parameter States of every group (braintools' ``param_states``)."""
        return ParamStates(self._groups)

    def get_last_lr(self) -> list:
        """Every group's learning rate now."""
        return _as_floats(self._lrs.value)

    def lr_apply(self, apply_fn: Callable[[Any], Any]) -> None:
        """Set every group's learning rate to ``apply_fn(lr)``."""
        self._lrs.value = lr_array(apply_fn(self._lrs.value))

    def add_scheduler(self, scheduler: LRScheduler) -> None:
        """Attach another scheduler: its ``step()`` sets the learning rates too."""
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"add_scheduler: expected an LRScheduler, got {type(scheduler).__name__}")
        scheduler.attach_optimizer(self)
        self._schedulers.append(scheduler)

    def _follow_scheduler(self, scheduler: LRScheduler) -> None:
        # Group i takes the scheduler's rate i; a group the scheduler has no base rate for follows
        # the schedule's shape (rate 0 / base rate 0) from its own base rate.
        rates = lr_array(scheduler.current_lrs.value)
        base0 = scheduler.base_lrs[0]
        shape = rates[0] / base0 if base0 > 0 else jnp.zeros((), rates.dtype)
        lrs = [rates[i] if i < rates.shape[0] else b * shape for i, b in enumerate(self._group_base_lrs)]
        self._lrs.value = lr_array(jnp.stack(lrs))

    # ---- parameters --------------------------------------------------------------------------
    def register_trainable_weights(self, param_states: Any) -> "OptaxOptimizer":
        """Register the parameters (a pytree of ``brainstate.State``) as group 0 and initialise its
        optimizer state. Returns ``self``."""
        if self._groups:
            raise ValueError(f"{type(self).__name__}: weights are already registered; use add_param_group for more")
        group = Registered.from_tree(f"{type(self).__name__}.register_trainable_weights", param_states)
        self._check_disjoint(group)
        self._groups.append(group)
        self._txs.append(self.tx)
        self.param_groups.append(ParamGroup(self, 0, {"params": param_states, **self.defaults, "lr": GroupLr(self, 0)}))
        self._init_states()
        return self

    def add_param_group(self, params: Any, **hyperparams: Any) -> None:
        """Add parameters with their own hyperparameters (``lr``, ``weight_decay`` and any of the
        constructor's), optimised by this optimizer's algorithm."""
        who = f"{type(self).__name__}.add_param_group"
        if not self._groups:
            raise ValueError(f"{who}: call register_trainable_weights first")
        unknown = set(hyperparams) - set(self.defaults)
        if unknown:
            raise TypeError(f"{who}: unknown hyperparameters {sorted(unknown)}; this optimizer takes {sorted(self.defaults)}")
        if self._tx_given is not None and set(hyperparams) - {"lr"}:
            raise ValueError(f"{who}: with a given tx, a group may set only its lr (the tx fixes everything else)")
        lr = float(hyperparams.get("lr", self._base_lr))
        check_learning_rate(who, lr)
        check_nonnegative(who, weight_decay=hyperparams.get("weight_decay"))
        if self._global_reduce:
            other = {k for k, v in hyperparams.items() if k != "lr" and v != self.defaults[k]}
            if other:
                raise ValueError(
                    f"{who}: {type(self).__name__} reduces over all its groups with one set of hyperparameters; "
                    f"a group may set only its own lr, not {sorted(other)}"
                )
            if int(self.step_count.value) > 0:
                raise ValueError(f"{who}: add groups of {type(self).__name__} before the first step (its state spans all groups)")
        group = Registered.from_tree(who, params)
        self._check_disjoint(group)
        hp = {**self.defaults, **hyperparams, "lr": lr}
        self._group_base_lrs.append(lr)
        self._groups.append(group)
        self._txs.append(self._build(len(self._groups) - 1, hp))
        self.param_groups.append(ParamGroup(self, len(self._groups) - 1, {"params": params, **hp}))
        self._follow_scheduler(self._lr_scheduler)
        self._init_states()

    def _check_disjoint(self, group: Registered) -> None:
        owned = {id(s) for g in self._groups for s in g.states}
        if len({id(s) for s in group.states}) != len(group.states) or owned & {id(s) for s in group.states}:
            raise ValueError(f"{type(self).__name__}: a parameter State is registered twice")

    def _init_states(self) -> None:
        if self._global_reduce:
            # One state over every group (the tuple of their trees once there are several).
            tree = self._tree([g.values() for g in self._groups])
            if self.opt_state is None:
                self.opt_state = OptimState(self.tx.init(tree))
                self.param_groups_opt_states = [self.opt_state]
            else:
                self.opt_state.value = self.tx.init(tree)
            return
        for i in range(len(self.param_groups_opt_states), len(self._groups)):
            self.param_groups_opt_states.append(OptimState(self._txs[i].init(self._groups[i].values())))
        self.opt_state = self.param_groups_opt_states[0]

    @staticmethod
    def _tree(per_group: list) -> Any:
        return per_group[0] if len(per_group) == 1 else tuple(per_group)

    # ---- the step ----------------------------------------------------------------------------
    def update(self, grads: Any, **extra_args: Any) -> None:
        """Alias of :meth:`step`."""
        return self.step(grads, **extra_args)

    def step(self, grads: Any, **extra_args: Any) -> None:
        """One optimisation step from ``grads`` (the registered structure with gradients in place of
        States, e.g. from ``brainstate.transform.grad``). ``extra_args`` go to the transformation
        (``value=`` for MoMo, ``value_fn=`` for LBFGS line searches)."""
        who = f"{type(self).__name__}.step"
        if not self._groups:
            raise ValueError(f"{who}: call register_trainable_weights before step")
        check_no_unknown(grads, self._groups)
        g = self._clip([group.grads(grads) for group in self._groups])
        p = [group.values() for group in self._groups]
        if self._global_reduce:
            new_p = self._global_step(g, p, extra_args)
        else:
            new_p = []
            for i, tx in enumerate(self._txs):
                extra = {"grad": g[i], **extra_args} if self._pass_grad else extra_args
                params_i, state_i = fused_step(tx, g[i], self.param_groups_opt_states[i].value, p[i], **extra)
                self.param_groups_opt_states[i].value = state_i
                new_p.append(params_i)
        for group, values in zip(self._groups, new_p):
            group.write(values)
        self.step_count.value = count_array(self.step_count.value + 1)

    def _global_step(self, g: list, p: list, extra_args: dict) -> list:
        tree_g, tree_p = self._tree(g), self._tree(p)
        extra = {"grad": tree_g, **extra_args} if self._pass_grad else extra_args
        if len(g) == 1:
            new_p, state = fused_step(self.tx, tree_g, self.opt_state.value, tree_p, **extra)
            self.opt_state.value = state
            return [new_p]
        updates, state = optax.with_extra_args_support(self.tx).update(tree_g, self.opt_state.value, tree_p, **extra)
        self.opt_state.value = state
        lrs = self._lrs.value
        ratio = [jnp.where(lrs[0] > 0, lrs[i] / jnp.where(lrs[0] > 0, lrs[0], 1), 0.0) for i in range(len(g))]
        return [optax.apply_updates(pi, jax.tree.map(lambda u, r=r: (r * u).astype(u.dtype), ui)) for pi, ui, r in zip(p, updates, ratio)]

    def _clip(self, g: list) -> list:
        if self.grad_clip_norm is not None:
            g, _ = optax.clip_by_global_norm(self.grad_clip_norm).update(g, optax.EmptyState())
        if self.grad_clip_value is not None:
            g, _ = optax.clip(self.grad_clip_value).update(g, optax.EmptyState())
        return g

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed run needs besides the parameters: step count, learning rates,
        per-group hyperparameters, optimizer states and scheduler states."""
        return {
            "step_count": self.step_count.value,
            "lr": self._lrs.value[0],
            "lrs": self._lrs.value,
            "base_lr": self._base_lr,
            "param_groups": {str(i): self._group_dict(i) for i in range(len(self.param_groups))},
            "param_groups_opt_states": {str(i): s.value for i, s in enumerate(self.param_groups_opt_states)},
            "opt_state": None if self.opt_state is None else self.opt_state.value,
            "lr_scheduler": self._lr_scheduler.state_dict(),
            "schedulers": [s.state_dict() for s in self._schedulers],
        }

    def _group_dict(self, i: int) -> dict:
        """braintools' serialised group: the hyperparameters, ``lr`` (group 0's rate now, an added
        group's entry) and the parameters' values (``load_state_dict`` restores the rates from
        ``lrs`` and not the parameters, as braintools)."""
        group = dict(self.param_groups[i])
        lr = group["lr"]
        return {**group, "params": self._groups[i].values(), "lr": lr.value if isinstance(lr, GroupLr) else lr}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s output (register the same parameter groups first)."""
        who = f"{type(self).__name__}.load_state_dict"
        saved = state_dict.get("param_groups_opt_states", {})
        if len(saved) != len(self.param_groups_opt_states):
            raise ValueError(f"{who}: the checkpoint has {len(saved)} optimizer states, this optimizer {len(self.param_groups_opt_states)}")
        for i, st in enumerate(self.param_groups_opt_states):
            new = saved[str(i)]
            if jax.tree.structure(new) != jax.tree.structure(st.value):
                raise ValueError(f"{who}: optimizer state {i} has a different structure (other parameters or algorithm?)")
            st.value = jax.tree.map(lambda old, x: jnp.asarray(x, old.dtype), st.value, new)
        self._lr_scheduler.load_state_dict(state_dict["lr_scheduler"])
        for s, d in zip(self._schedulers, state_dict.get("schedulers", [])):
            s.load_state_dict(d)
        self.step_count.value = count_array(state_dict["step_count"])
        lrs = lr_array(state_dict["lrs"])
        if lrs.shape != self._lrs.value.shape:
            raise ValueError(f"{who}: the checkpoint has {lrs.shape[0]} learning rates, this optimizer {self._lrs.value.shape[0]}")
        self._lrs.value = lrs
