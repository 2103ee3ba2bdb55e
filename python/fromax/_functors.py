"""The elementwise engine's functors: their math in pure JAX, by the names of their contract.

Each entry is one FFI target ``fromax_<name>``: its contract (streams, sums or results, coefficient
columns, by name) is the table ``functors.h`` that the C++ functors (``cpp/functors/*.h``) are
compiled from (:mod:`fromax._contract` reads it), and its math here is the C++ functor's, line for
line: :mod:`fromax._engine` applies it per leaf as the ``backend="xla"`` reference, the kernels'
derivative rule, and the test oracle.

A functor's math reads one element of each input stream (``x.g``, ``x.p``, ...) and the tensor's
coefficients (``c.lr``, ...: hyperparameters and per-tensor scalars) and returns, by name,

* a **reduce** functor: its terms, each summed over the tensor (per-tensor sums); a term named
  ``*_norm`` is instead the element's value, and its "sum" the tensor's 2-norm of it
  (:func:`fromax._l2.l2_norm` here; squares accumulated in f64 in the kernels); or
* an **update** functor: its results, each named after the input stream it replaces. The result
  named after the parameter is its increment ``dp``; the fused step writes ``p + dp`` over the
  parameter instead, as ``optax.apply_updates`` would (so non-finite values propagate as there).
* a **per-tensor fused** functor: a reduce functor and an update functor over the same streams,
  coupled per tensor by its math, ``finish(c, s) -> row``, which turns each tensor's sums ``s``
  (by the reduce's names) into its update row (by the update's column names). One call reduces,
  finishes and updates each tensor (a small one while it is in cache). ``c`` and ``s`` hold
  ``(n,)`` vectors (or scalars).

Every entry of the table must have its math here, and no other (checked at import).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Sequence

import jax.numpy as jnp
import numpy as np

from fromax._contract import TABLE, Entry, is_norm


class Named:
    """Values by name (``c.lr``) and by position (``c[0]``), for a functor's math."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Sequence[str], values: Sequence[Any]):
        if len(names) != len(values):
            raise ValueError(f"fromax: {len(values)} values for the {len(names)} names {tuple(names)}")
        self._names, self._values = tuple(names), list(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[self._names.index(name)]
        except ValueError:
            raise AttributeError(f"no value named {name!r} among {self._names}") from None

    def __getitem__(self, k):
        return self._values[k]


@dataclasses.dataclass(frozen=True)
class Functor:
    entry: Entry  # the contract (functors.h)
    math: Callable  # (c, x) -> {name: term or result}; fused: (c, s) -> {update column: value}
    parts: tuple["Functor", "Functor"] | None = None  # fused functors: (reduce, update)

    name = property(lambda self: self.entry.name)
    inputs = property(lambda self: self.parts[1].inputs if self.parts else self.entry.inputs)
    columns = property(lambda self: self.entry.columns)
    outputs = property(lambda self: self.parts[1].outputs if self.parts else self.entry.outputs)  # sums or results
    is_reduce = property(lambda self: self.entry.kind == "reduce")
    is_fused = property(lambda self: self.entry.kind == "fused")
    n_in = property(lambda self: len(self.inputs))
    n_coeffs = property(lambda self: len(self.columns))
    n_sums = property(lambda self: len(self.outputs) if self.is_reduce else 0)
    n_out = property(lambda self: 0 if self.is_reduce else len(self.outputs))
    # a reduce's outputs that are 2-norms (``*_norm``), not sums
    norms = property(lambda self: tuple(is_norm(s) for s in self.outputs) if self.is_reduce else ())

    @property
    def replaces(self) -> tuple[int, ...]:
        """An update's (or fused functor's): the input stream each result replaces."""
        return () if self.is_reduce else tuple(self.inputs.index(r) for r in self.outputs)

    @property
    def target(self) -> str:
        return f"fromax_{self.name}"

    def apply(self, c: Sequence, x: Sequence) -> list:
        """The math on coefficients ``c`` and streams ``x`` (a fused functor: sums) in contract
        order; its results in contract order (a fused functor: the update's columns)."""
        if self.is_fused:
            x_names, out_names = self.parts[0].outputs, self.parts[1].columns
        else:
            x_names, out_names = self.inputs, self.outputs
        out = self.math(Named(self.columns, c), Named(x_names, x))
        if list(out) != list(out_names):
            raise AssertionError(f"fromax: the math of {self.target} returns {tuple(out)}, its contract says {out_names}")
        return list(out.values())


FUNCTORS: dict[str, Functor] = {}


# ---- the math as XLA's loops compute it -------------------------------------------------------------
# Where XLA computes an update (the optax contract; backend="xla") it writes each result in a loop
# of its own (XLA's CPU backend makes no multi-output loops), every state result in place over the
# donated state it replaces, and the new params in a loop that adds the increment (in the contract,
# the caller's `optax.apply_updates`). A loop that reads a state tensor another loop overwrites,
# with no data dependency ordering the two, makes XLA copy that tensor first (a pass over memory).
# The increment must therefore read the new state, never the old: where the math reads both, its
# XLA form (`in_xla_form()`) recovers the old from the new.
_XLA_FORM = [False]


@contextlib.contextmanager
def xla_form() -> Iterator[None]:
    """Trace update math in the form XLA's loops compute without copies (see above)."""
    outer, _XLA_FORM[0] = _XLA_FORM[0], True
    try:
        yield
    finally:
        _XLA_FORM[0] = outer


def in_xla_form() -> bool:
    return _XLA_FORM[0]


def _register(kind: str, name: str):
    """Register ``math`` as the math of the table's entry ``name`` (which must be a ``kind``)."""
    entry = TABLE.get(name)
    if entry is None or entry.kind != kind:
        raise RuntimeError(f"fromax: {name} is not a {kind} functor of functors.h")

    def register(math):
        if kind == "fused":  # its parts' fit is checked by _contract.parse
            FUNCTORS[name] = Functor(entry, math, parts=tuple(FUNCTORS[part] for part in entry.parts))
        else:
            FUNCTORS[name] = Functor(entry, math)
        return FUNCTORS[name]

    return register


def _reduce(name: str):
    return _register("reduce", name)


def _update(name: str):
    return _register("update", name)


def _fused(name: str):
    return _register("fused", name)


# ---- Fromage (cpp/functors/fromage.h) -------------------------------------------------------------
@_reduce("fromage_sums")
def fromage_sums(c, x):
    return {"p_norm": x.p, "g_norm": x.g, "pg": x.p * x.g}


@_update("axpby")
def axpby(c, x):
    return {"p": c.a * x.p + c.b * x.g}


def _safe_sqrt(x, positive):
    """sqrt(x) where ``positive``, 1 elsewhere (a finite derivative in both branches)."""
    return jnp.sqrt(jnp.where(positive, x, 1))


def norm_from_squared(sq):
    """``sqrt(sq)`` whose derivative at ``sq = 0`` is 0 (a zero tensor's norm), not NaN; 0 for a
    negative ``sq`` (rounding in a closed form), NaN for a NaN one (it poisons what it scales)."""
    positive = sq > 0
    return jnp.where(positive, _safe_sqrt(sq, positive), jnp.where(sq <= 0, 0, sq))


def at_least(norm, floor):
    """optax's ``safe_norm`` clamp: ``floor`` where ``norm <= floor``, else ``norm`` (NaN stays NaN)."""
    return norm if is_static_zero(floor) else jnp.where(norm <= floor, floor, norm)


def fromage_coefficients(w_raw, g_raw, wg, lr, p_bound, init_norms, delta: bool, min_norm=0.0):
    r"""Per-tensor Fromage coefficients ``(a, b)`` with ``W_new = a W + b g`` (or ``W_new - W`` if delta).

    .. math::
        r = 1 \text{ if } \|W\|' = 0 \text{ or } \|g\|' = 0 \text{ else } \|W\|' / \|g\|',\qquad
        a = 1/\sqrt{1+\eta^2},\quad b = -\eta r/\sqrt{1+\eta^2}

    where :math:`\|x\|'` is the norm raised to ``min_norm`` where it is ``<= min_norm`` (optax's
    ``safe_norm``; ``min_norm = 0``, the paper's rule, leaves it as it is). The zero test is
    ``= 0``, as in optax, so a NaN norm gives a NaN ratio and poisons the tensor's step.
    ``w_raw``, ``g_raw``: the norms :math:`\|W\|, \|g\|`; ``wg``: :math:`\langle W, g\rangle`.
    With ``init_norms`` (``p_bound`` set; None or a 0 entry: uncapped), where ``\|W_0\| > 0`` and
    ``\|W_new\| = \|W\|\sqrt{a^2 + 2a\beta\cos + \beta^2} > p_{bound}\|W_0\|`` (``\beta = b\|g\|/\|W\|``,
    ``\cos = \langle W,g\rangle / (\|W\|\|g\|)``: no square of a norm), both are
    scaled by ``p_bound \|W_0\| / \|W_new\|``. With ``delta``, ``a`` becomes ``a - 1``, evaluated
    without cancelling ``1/root`` against 1. ``cpp/functors/fromage.h`` is the same math.
    """
    # Square roots only of positive values, even in the branch jnp.where discards: under jax.grad a
    # discarded sqrt(0) would still send inf * 0 = NaN into the derivative (zero-initialised biases).
    w_norm, g_norm = at_least(w_raw, min_norm), at_least(g_raw, min_norm)
    zero = (w_norm == 0) | (g_norm == 0)
    ratio = jnp.where(zero, jnp.ones_like(w_raw), w_norm / jnp.where(zero, 1, g_norm))
    root = jnp.sqrt(1 + lr * lr)
    a = 1 / root
    b = -(lr * ratio) / root
    scale = jnp.ones_like(w_raw)
    if init_norms is not None and not is_static_zero(init_norms):
        new_norm = fromage_new_norm(a, b, w_raw, g_raw, wg)
        cap = p_bound * init_norms
        capped = (init_norms > 0) & (new_norm > cap)
        scale = jnp.where(capped, cap / jnp.where(capped, new_norm, 1), scale)
    b = b * scale
    if delta:
        a = scale * (-(lr * lr) / (root * (1 + root))) + (scale - 1)
    else:
        a = a * scale
    return a, b


def fromage_new_norm(a, b, w, g, wg):
    """``|a W + b g|`` from ``|W|``, ``|g|`` and ``<W, g>``: ``|W| sqrt(a^2 + 2 a beta cos + beta^2)``,
    ``|b| |g|`` where ``W = 0`` (``cpp/functors/fromage.h``'s ``NewNorm``)."""
    w_zero, g_zero = w == 0, g == 0
    w_safe = jnp.where(w_zero, 1, w)
    beta = jnp.where(g_zero, 0, b * (g / w_safe))
    cos = jnp.where(g_zero, 0, (wg / w_safe) / jnp.where(g_zero, 1, g))
    q = a * a + 2 * a * beta * cos + beta * beta
    return jnp.where(w_zero, jnp.abs(b) * g, w * norm_from_squared(q))


@_fused("fromage")
def fromage(c, s):  # p0_norm: |W0| (0: uncapped)
    a, b = fromage_coefficients(s.p_norm, s.g_norm, s.pg, c.lr, c.p_bound, c.p0_norm, True, c.min_norm)
    return {"a": a, "b": b}


# ---- Adam (cpp/functors/adam.h) ---------------------------------------------------------------
def is_static_zero(x) -> bool:
    """Whether ``x`` is known to be 0 while tracing: a Python or NumPy number (coefficients known
    while tracing stay NumPy scalars: see fromax._engine.Coefficients)."""
    return isinstance(x, (int, float, np.number)) and x == 0


def axpy(a, x, y):
    """``a * x + y``; just ``y`` where ``a`` is known to be 0, so that XLA's loop need not read ``x``."""
    return y if is_static_zero(a) else a * x + y


def plus_nonzero(d, p, x):
    """``x + d * p`` where ``d != 0``, else ``x`` (never ``0 * p``, which is NaN for an infinite p)."""
    if isinstance(d, (int, float, np.number)):
        return x if d == 0 else x + d * p
    return jnp.where(d != 0, x + d * p, x)


def adam_direction(c, g, m, v):
    """The Adam direction from the columns every Adam row starts with (``adam_columns``)."""
    m_new = c.b1 * m + (1 - c.b1) * g
    v_new = c.b2 * v + (1 - c.b2) * (g * g)
    m_hat = axpy(c.cg, g, c.cm * m_new)
    return m_hat / (jnp.sqrt(v_new / c.bc2 + c.eps_root) + c.eps), m_new, v_new


@_update("adamw")
def adamw(c, x):
    d, m, v = adam_direction(c, x.g, x.m, x.v)
    return {"p": -c.lr * plus_nonzero(c.wd, x.p, d), "m": m, "v": v}


@_update("adamw_ema")
def adamw_ema(c, x):
    return adamw.math(c, x) | {"e": c.e_decay * x.e + c.e_gain * x.g}


@_reduce("lamb_norms")
def lamb_norms(c, x):
    d, _, _ = adam_direction(c, x.g, x.m, x.v)
    u = plus_nonzero(c.wd, x.p, d)
    return {"p_norm": x.p, "u_norm": u}


def trust_ratio(p_norm, u_norm, trust_coefficient, eps):
    """``optax.scale_by_trust_ratio``'s per-tensor ratio from the norms: ``c |p| / (|u| + eps)``,
    1 where either norm is 0 (tested as ``= 0``, as optax does: a NaN norm poisons the step)."""
    zero = (p_norm == 0) | (u_norm == 0)
    return jnp.where(zero, 1, trust_coefficient * p_norm / (jnp.where(zero, 1, u_norm) + eps))


@_fused("lamb")
def lamb(c, s):
    ratio = trust_ratio(s.p_norm, s.u_norm, 1.0, 0.0)
    return {k: getattr(c, k) for k in ("b1", "b2", "eps", "eps_root", "cm", "cg", "bc2")} | {"lr": c.lr * ratio, "wd": c.wd}


def _hypergradient_terms(c, x):
    d = (x.m / c.bc1) / (jnp.sqrt(x.v / c.bc2) + c.eps)
    return {"g_dprev": x.g * d, "g_m": x.g * x.m, "gg": x.g * x.g}


@_reduce("hypergradient_sums")
def hypergradient_sums(c, x):
    return _hypergradient_terms(c, x)


@_reduce("surprise_sums")
def surprise_sums(c, x):
    r = x.g - x.e
    return _hypergradient_terms(c, x) | {"rr": r * r}


# ---- LARS, NovoGrad (cpp/functors/layerwise.h) -------------------------------------------------
@_reduce("lars_norms")
def lars_norms(c, x):
    u = plus_nonzero(c.wd, x.p, x.g)
    return {"p_norm": x.p, "u_norm": u}


@_update("momentum")
def momentum(c, x):
    u = c.scale * plus_nonzero(c.wd, x.p, x.g)
    t = u + c.decay * x.t
    return {"p": jnp.where(c.nesterov != 0, u + c.decay * t, t), "t": t}


@_update("novograd")
def novograd(c, x):
    m = plus_nonzero(c.b1, x.m, plus_nonzero(c.wd, x.p, x.g / c.den))  # b1 = 0: m unread (first step)
    return {"p": -c.lr * m, "m": m}


@_fused("lars")
def lars(c, s):
    ratio = jnp.where(jnp.asarray(c.trust_mask) > 0, trust_ratio(s.p_norm, s.u_norm, c.trust_coefficient, c.eps), 1)
    return {"wd": c.wd, "scale": -c.lr * ratio, "decay": c.momentum, "nesterov": c.nesterov}


# ---- DoG, DoWG (cpp/functors/distance.h) ---------------------------------------------------------
@_reduce("distance_norms")
def distance_norms(c, x):
    d = x.x0 - x.p
    u = plus_nonzero(c.wd, x.p, x.g)
    return {"d_norm": d, "u_norm": u}


@_update("scaled_sgd")
def scaled_sgd(c, x):
    return {"p": c.scale * plus_nonzero(c.wd, x.p, x.g)}


# ---- Prodigy, D-Adapt AdamW (cpp/functors/dadapt.h) ---------------------------------------------
@_reduce("prodigy_sums")
def prodigy_sums(c, x):
    return {"g_dist": x.g * (x.p0 - x.p), "s_abs": jnp.abs(c.beta3 * x.s + c.k * (c.d * x.g) / c.d0)}


@_update("prodigy")
def prodigy(c, x):
    dg = c.d * x.g
    m = c.b1 * x.m + (1 - c.b1) * dg
    v = c.b2 * x.v + (1 - c.b2) * dg * dg
    s = c.beta3 * x.s + c.k * dg / c.d0
    return {"p": -c.wd * c.dlr * x.p - c.dlr * m / (jnp.sqrt(v) + c.d_eps), "m": m, "v": v, "s": s}


@_reduce("dadapt_sums")
def dadapt_sums(c, x):
    return {"g_s": x.g * (x.s / (jnp.sqrt(x.v) + c.eps)), "s_abs": jnp.abs(c.sb2 * x.s + (1 - c.sb2) * c.dlr * x.g)}


@_update("dadapt")
def dadapt(c, x):  # c.d_new: this step's D estimate, unused (see cpp/functors/dadapt.h)
    g = x.g
    m = c.b1 * x.m + (1 - c.b1) * c.dlr * g
    v = c.b2 * x.v + (1 - c.b2) * g * g
    s = c.sb2 * x.s + (1 - c.sb2) * c.dlr * g
    return {"p": -c.wd * c.dlr * x.p - m / (jnp.sqrt(v) + c.eps), "m": m, "v": v, "s": s}


# ---- COCOB (cpp/functors/cocob.h) -----------------------------------------------------------------
@_update("cocob")
def cocob(c, x):
    p, p0 = x.p, x.p0
    g = c.lr * plus_nonzero(c.wd, p, x.g)
    big_l = jnp.maximum(x.max_grad, jnp.abs(g))
    big_g = x.abs_grad_sum + jnp.abs(g)
    r = x.reward - g * (p - p0)
    # max(r, 0) as a select (the same value, NaN included, but for the sign of a zero): XLA's CPU
    # fusion duplicates a maximum-with-0 into the increment's loop, which then reads the old
    # reward that R' is written over (so XLA copies the reward and the params first); a select
    # it computes once.
    r = jnp.where(r < 0, 0, r)
    big_c = x.grad_sum - g
    dp = -p + (p0 + big_c / (big_l * jnp.maximum(big_g + big_l, c.alpha * big_l)) * (big_l + r))
    return {"p": dp, "grad_sum": big_c, "max_grad": big_l, "abs_grad_sum": big_g, "reward": r}


# ---- Mechanic (cpp/functors/mechanic.h) -----------------------------------------------------------
@_reduce("mechanic_sums")
def mechanic_sums(c, x):
    d = x.x0 - x.p
    return {"g_norm": x.g, "p_norm": x.p, "g_delta": x.g * d, "p_delta": x.p * d}


@_update("mechanic")
def mechanic(c, x):
    p, x0 = x.p, x.x0
    return {"p": (x0 - c.s_new * ((x0 - p) / c.s_old_eps - x.u)) - p}


# ---- MoMo, MoMo-Adam (cpp/functors/momo.h) -----------------------------------------------------
@_reduce("momo_sums")
def momo_sums(c, x):
    m = c.bt * x.m + (1 - c.bt) * x.g
    return {"gp": x.g * x.p, "mm": m * m, "mp": m * x.p}


@_update("momo")
def momo(c, x):
    m = c.bt * x.m + (1 - c.bt) * x.g
    return {"p": c.cp * x.p - c.tau * m, "m": m}


def momo_adam_precond(c, g, m, v):
    m_new = c.b1 * m + (1 - c.b1) * g
    v_new = c.b2 * v + (1 - c.b2) * (g * g)
    return c.eps + jnp.sqrt(v_new / c.bc2), m_new, v_new


@_reduce("momo_adam_sums")
def momo_adam_sums(c, x):
    pre, m, _ = momo_adam_precond(c, x.g, x.m, x.v)
    return {"mm_pre": m * (m / pre), "gp": x.g * x.p, "mp": m * x.p}


@_update("momo_adam")
def momo_adam(c, x):
    pre, m, v = momo_adam_precond(c, x.g, x.m, x.v)
    return {"p": c.cp * x.p - c.tau * m / pre, "m": m, "v": v}


# ---- Schedule-Free (cpp/functors/schedule_free.h) -------------------------------------------------
def schedule_free_step(c, y, z, u, u_again=None):
    """``(y' - y, z')``; ``u_again``: ``u`` computed apart, for the XLA form (schedule_free_adamw)."""
    b1, ck = c.b1, c.ck
    z_new = z + u
    if in_xla_form():
        # The old z from the new: the params' loop reads z' (written over z), not z. Rounding
        # costs at most half an ulp of z', as much as optax's own increment y' - y costs.
        z = z_new - (u if u_again is None else u_again)
    x_prev = (y - (1 - b1) * z) / b1
    x = (1 - ck) * x_prev + ck * z_new
    return (b1 * x + (1 - b1) * z_new) - y, z_new


@_update("schedule_free")
def schedule_free(c, x):
    dy, z = schedule_free_step(c, x.y, x.z, x.u)
    return {"y": dy, "z": z}


@_update("schedule_free_sgd")
def schedule_free_sgd(c, x):
    u = -c.lr * plus_nonzero(c.wd, x.y, x.g)
    dy, z = schedule_free_step(c, x.y, x.z, u)
    return {"y": dy, "z": z}


@_update("schedule_free_adamw")
def schedule_free_adamw(c, x):
    g = x.g
    v = c.b2 * x.v + (1 - c.b2) * (g * g)
    u = -c.lr * plus_nonzero(c.wd, x.y, g / (jnp.sqrt(v / c.bc2) + c.eps))
    u_again = None
    if in_xla_form():
        # u once more, for the params' loop to recover z (schedule_free_step), written so that
        # XLA's CSE does not merge it with u: u's divide and square root then have one user each
        # and XLA computes them inside each loop. One u read by two loops is an expensive value
        # with two users, which XLA's CPU fusion writes to a temporary instead (a fresh buffer
        # written and read twice per step). It differs from u by an ulp of u at most.
        u_again = -c.lr * plus_nonzero(c.wd, x.y, g * (1 / (jnp.sqrt(v * (1 / c.bc2)) + c.eps)))
    dy, z = schedule_free_step(c, x.y, x.z, u, u_again)
    return {"y": dy, "z": z, "v": v}


# ---- the gradient prologue (cpp/functors/prologue.h) ----------------------------------------------
def apply_prologue(c, g, p):
    """``g' = post_scale * clamp(pre_scale * g + pre_decay * p, -clip, clip) + post_decay * p``
    (``clip = inf``: no clamp); ``c`` holds the prologue's columns by name."""
    x = plus_nonzero(c.pre_decay, p, c.pre_scale * g)
    clip = c.clip
    if not (isinstance(clip, np.floating) and np.isinf(clip)):
        x = jnp.where(x < -clip, -clip, jnp.where(x > clip, clip, x))  # NaN passes through
    return plus_nonzero(c.post_decay, p, c.post_scale * x)


@_reduce("norm")
def norm(c, x):
    return {"x_norm": x.x}


@_reduce("grad_norm")
def grad_norm(c, x):
    return {"g_norm": x.g}


# NovoGrad's fused step (cpp/functors/layerwise.h), on the norm reduce above.
def novograd_moment(nu, first, b2, one_minus_b2, g_sq):
    """NovoGrad's per-tensor second moment: ``|g|^2`` on the first step, else ``b2 nu + (1 - b2) |g|^2``."""
    return jnp.where(first, g_sq, b2 * nu + one_minus_b2 * g_sq)


@_fused("novograd_step")
def novograd_step(c, s):
    first = jnp.asarray(c.first) != 0
    nu = novograd_moment(c.nu, first, c.b2, c.one_minus_b2, s.x_norm * s.x_norm)
    return {"b1": jnp.where(first, 0.0, c.b1), "den": jnp.sqrt(nu + c.eps_root) + c.eps, "wd": c.wd, "lr": c.lr}


def _with_prologue(base: Functor, entry: Entry) -> Functor:
    """Twin ``entry``: ``base`` with its gradient (stream 0) first replaced by
    :func:`apply_prologue` of the parameter (stream 1) and the prologue's columns."""

    def math(c, x):
        g = apply_prologue(c, x[0], x[1])
        return base.math(c, Named(base.inputs, [g, *x[1:]]))

    return dataclasses.replace(base, entry=entry, math=math)


# The prologue twins of functors.h.
for _entry in TABLE.values():
    if _entry.base is not None:
        FUNCTORS[_entry.name] = _with_prologue(FUNCTORS[_entry.base], _entry)

if set(FUNCTORS) != set(TABLE):
    raise RuntimeError(f"fromax: functors.h and _functors.py disagree on {sorted(set(FUNCTORS) ^ set(TABLE))}")
