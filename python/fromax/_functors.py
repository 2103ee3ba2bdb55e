"""The elementwise engine's functors: their operand contract and their math in pure JAX.

Each entry is one FFI target ``fromax_<name>`` (``cpp/functors/*.h``, listed in
``cpp/functors/list.h``) and the same math, line for line, in JAX: :mod:`fromax._engine` applies
it per leaf as the ``backend="xla"`` reference, the kernels' derivative rule, and the test oracle.

A functor maps one element of each of its input streams ``x[0..n_in)`` and the tensor's row of
coefficients ``c[0..n_coeffs)`` (hyperparameters and per-tensor scalars) to

* a **reduce** functor: ``n_sums`` terms, summed over each tensor (per-tensor sums); or
* an **update** functor: ``n_out`` results, result ``j`` replacing input stream ``replaces[j]``.
  Result 0 is the parameter's increment ``dp``; the fused step writes ``p + dp`` (``p`` is stream
  ``replaces[0]``) over the parameter instead. An ``absolute`` update's result 0 is the new
  parameter itself (its rows say which: Fromage's ``a W + b g``), stored as it is.
* a **per-tensor fused** functor: a reduce functor and an update functor over the same streams,
  coupled per tensor by ``finish(c, s) -> row``, which turns each tensor's sums into its update
  row. One call reduces, finishes and updates each tensor (a small one while it is in cache).
  Its ``math`` is ``finish``, on columns: ``c`` and ``s`` are lists of ``(n,)`` vectors (or
  scalars), one per coefficient and per sum, and it returns the update's columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterator, Sequence

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Functor:
    name: str
    n_in: int
    n_coeffs: int
    math: Callable  # (c, x) -> list of terms (reduce) or results (update)
    n_sums: int = 0  # reduce functors
    replaces: tuple[int, ...] = ()  # update functors: the input stream each result replaces
    absolute: bool = False  # update functors: result 0 is the new parameter, not an increment
    parts: tuple["Functor", "Functor"] | None = None  # fused functors: (reduce, update)

    @property
    def is_reduce(self) -> bool:
        return not self.replaces

    @property
    def is_fused(self) -> bool:
        return self.parts is not None

    @property
    def n_out(self) -> int:
        return len(self.replaces)

    @property
    def target(self) -> str:
        return f"fromax_{self.name}"


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


def _reduce(name: str, n_in: int, n_sums: int, n_coeffs: int):
    def register(math):
        FUNCTORS[name] = Functor(name, n_in, n_coeffs, math, n_sums=n_sums)
        return FUNCTORS[name]

    return register


def _update(name: str, n_in: int, replaces: Sequence[int], n_coeffs: int, absolute: bool = False):
    def register(math):
        FUNCTORS[name] = Functor(name, n_in, n_coeffs, math, replaces=tuple(replaces), absolute=absolute)
        return FUNCTORS[name]

    return register


def _fused(name: str, reduce: str, update: str, n_coeffs: int):
    def register(finish):
        r, u = FUNCTORS[reduce], FUNCTORS[update]
        assert r.n_in <= u.n_in and r.n_coeffs <= n_coeffs, name
        FUNCTORS[name] = Functor(name, u.n_in, n_coeffs, finish, replaces=u.replaces, parts=(r, u))
        return FUNCTORS[name]

    return register


# ---- Fromage (cpp/functors/fromage.h) -------------------------------------------------------------
@_reduce("fromage_sums", 2, 3, 0)
def fromage_sums(c, x):
    return [x[1] * x[1], x[0] * x[0], x[1] * x[0]]


@_update("axpby", 2, (1,), 2, absolute=True)
def axpby(c, x):
    return [c[0] * x[1] + c[1] * x[0]]


def _safe_sqrt(x, positive):
    """sqrt(x) where ``positive``, 1 elsewhere (a finite derivative in both branches)."""
    return jnp.sqrt(jnp.where(positive, x, 1))


def norm_from_squared(sq):
    """``sqrt(sq)`` whose derivative at ``sq = 0`` is 0 (a zero tensor's norm), not NaN."""
    return jnp.where(sq > 0, _safe_sqrt(sq, sq > 0), 0)


def fromage_coefficients(ww, gg, wg, lr, p_bound, init_norms, delta: bool):
    r"""Per-tensor Fromage coefficients ``(a, b)`` with ``W_new = a W + b g`` (or ``W_new - W`` if delta).

    .. math::
        r = \|W\| / \|g\| \text{ if } \|W\|>0 \text{ and } \|g\|>0 \text{ else } 1,\qquad
        a = 1/\sqrt{1+\eta^2},\quad b = -\eta r/\sqrt{1+\eta^2}

    With ``init_norms`` (``p_bound`` set; None or a 0 entry: uncapped), where ``\|W_0\| > 0`` and
    ``\|W_new\| = \sqrt{a^2\|W\|^2 + 2ab\langle W,g\rangle + b^2\|g\|^2} > p_{bound}\|W_0\|``, both are
    scaled by ``p_bound \|W_0\| / \|W_new\|``. With ``delta``, ``a`` becomes ``a - 1``, evaluated
    without cancelling ``1/root`` against 1. ``cpp/functors/fromage.h`` is the same math.
    """
    # Square roots only of positive values, even in the branch jnp.where discards: under jax.grad a
    # discarded sqrt(0) would still send inf * 0 = NaN into the derivative (zero-initialised biases).
    both = (ww > 0) & (gg > 0)
    ratio = jnp.where(both, _safe_sqrt(ww, both) / _safe_sqrt(gg, both), jnp.ones_like(ww))
    root = jnp.sqrt(1 + lr * lr)
    a = 1 / root
    b = -(lr * ratio) / root
    scale = jnp.ones_like(ww)
    if init_norms is not None and not is_static_zero(init_norms):
        new_sq = a * a * ww + 2 * a * b * wg + b * b * gg
        new_norm = norm_from_squared(new_sq)
        cap = p_bound * init_norms
        capped = (init_norms > 0) & (new_norm > cap)
        scale = jnp.where(capped, cap / jnp.where(capped, new_norm, 1), scale)
    b = b * scale
    if delta:
        a = scale * (-(lr * lr) / (root * (1 + root))) + (scale - 1)
    else:
        a = a * scale
    return a, b


@_fused("fromage", "fromage_sums", "axpby", 3)
def fromage(c, s):  # c: lr, p_bound, |W0| (0: uncapped)
    return list(fromage_coefficients(s[0], s[1], s[2], c[0], c[1], c[2], False))


# ---- Adam (cpp/functors/adam.h) ---------------------------------------------------------------
ADAM_COLS = 7  # b1, b2, eps, eps_root, cm, cg, bc2


def is_static_zero(x) -> bool:
    """Whether ``x`` is known to be 0 while tracing: a Python or NumPy number (coefficients known
    while tracing stay NumPy scalars: see fromax._engine.Coefficients)."""
    return isinstance(x, (int, float, np.number)) and x == 0


def axpy(a, x, y):
    """``a * x + y``; just ``y`` where ``a`` is known to be 0, so that XLA's loop need not read ``x``."""
    return y if is_static_zero(a) else a * x + y


def adam_direction(c, g, m, v):
    b1, b2, eps, eps_root = c[0], c[1], c[2], c[3]
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * (g * g)
    m_hat = axpy(c[5], g, c[4] * m_new)
    return m_hat / (jnp.sqrt(v_new / c[6] + eps_root) + eps), m_new, v_new


@_update("adamw", 4, (1, 2, 3), ADAM_COLS + 2)
def adamw(c, x):
    d, m, v = adam_direction(c, x[0], x[2], x[3])
    return [-c[ADAM_COLS] * (d + c[ADAM_COLS + 1] * x[1]), m, v]


@_update("adamw_ema", 5, (1, 2, 3, 4), ADAM_COLS + 4)
def adamw_ema(c, x):
    return adamw.math(c, x) + [c[ADAM_COLS + 2] * x[4] + c[ADAM_COLS + 3] * x[0]]


@_reduce("lamb_norms", 4, 2, ADAM_COLS + 1)
def lamb_norms(c, x):
    d, _, _ = adam_direction(c, x[0], x[2], x[3])
    u = d + c[ADAM_COLS] * x[1]
    return [x[1] * x[1], u * u]


def trust_ratio(p_sq, u_sq, trust_coefficient, eps):
    """``optax.scale_by_trust_ratio``'s per-tensor ratio from squared norms: ``c |p| / (|u| + eps)``,
    1 where either norm is 0. Square roots only of positive values (finite derivatives)."""
    both = (p_sq > 0) & (u_sq > 0)
    p_norm = jnp.sqrt(jnp.where(both, p_sq, 1))
    u_norm = jnp.sqrt(jnp.where(both, u_sq, 1))
    return jnp.where(both, trust_coefficient * p_norm / (u_norm + eps), 1)


@_fused("lamb", "lamb_norms", "adamw", ADAM_COLS + 2)
def lamb(c, s):  # c: Adam, wd, lr
    return list(c[:ADAM_COLS]) + [c[ADAM_COLS + 1] * trust_ratio(s[0], s[1], 1.0, 0.0), c[ADAM_COLS]]


@_reduce("hypergradient_sums", 3, 3, 3)
def hypergradient_sums(c, x):
    d = (x[1] / c[0]) / (jnp.sqrt(x[2] / c[1]) + c[2])
    return [x[0] * d, x[0] * x[1], x[0] * x[0]]


@_reduce("surprise_sums", 4, 4, 3)
def surprise_sums(c, x):
    r = x[0] - x[3]
    return hypergradient_sums.math(c, x) + [r * r]


# ---- LARS, NovoGrad (cpp/functors/layerwise.h) -------------------------------------------------
@_reduce("lars_norms", 2, 2, 1)
def lars_norms(c, x):
    u = x[0] + c[0] * x[1]
    return [x[1] * x[1], u * u]


@_update("momentum", 3, (1, 2), 4)
def momentum(c, x):
    u = c[1] * axpy(c[0], x[1], x[0])
    t = u + c[2] * x[2]
    return [jnp.where(c[3] != 0, u + c[2] * t, t), t]


@_update("novograd", 3, (1, 2), 4)
def novograd(c, x):
    m = c[0] * x[2] + axpy(c[2], x[1], x[0] / c[1])
    return [-c[3] * m, m]


@_fused("lars", "lars_norms", "momentum", 7)
def lars(c, s):  # c: wd, lr, trust coefficient, eps, trust mask, momentum, nesterov
    ratio = jnp.where(jnp.asarray(c[4]) > 0, trust_ratio(s[0], s[1], c[2], c[3]), 1)
    return [c[0], -c[1] * ratio, c[5], c[6]]


# ---- DoG, DoWG (cpp/functors/distance.h) ---------------------------------------------------------
@_reduce("distance_norms", 3, 2, 1)
def distance_norms(c, x):
    d = x[2] - x[1]
    u = x[0] + c[0] * x[1]
    return [d * d, u * u]


@_update("scaled_sgd", 2, (1,), 2)
def scaled_sgd(c, x):
    return [c[1] * (x[0] + c[0] * x[1])]


# ---- Prodigy, D-Adapt AdamW (cpp/functors/dadapt.h) ---------------------------------------------
@_reduce("prodigy_sums", 4, 2, 4)
def prodigy_sums(c, x):
    return [x[0] * (x[3] - x[1]), jnp.abs(c[0] * x[2] + c[2] * (c[1] * x[0]) / c[3])]


@_update("prodigy", 5, (1, 2, 3, 4), 9)
def prodigy(c, x):
    dg = c[3] * x[0]
    m = c[0] * x[2] + (1 - c[0]) * dg
    v = c[1] * x[3] + (1 - c[1]) * dg * dg
    s = c[2] * x[4] + c[4] * dg / c[5]
    return [-c[7] * c[6] * x[1] - c[6] * m / (jnp.sqrt(v) + c[8]), m, v, s]


@_reduce("dadapt_sums", 3, 2, 3)
def dadapt_sums(c, x):
    return [x[0] * (x[1] / (jnp.sqrt(x[2]) + c[0])), jnp.abs(c[1] * x[1] + (1 - c[1]) * c[2] * x[0])]


@_update("dadapt", 5, (1, 2, 3, 4), 7)
def dadapt(c, x):  # c[6]: this step's D estimate, unused (see cpp/functors/dadapt.h)
    g = x[0]
    m = c[0] * x[2] + (1 - c[0]) * c[3] * g
    v = c[1] * x[3] + (1 - c[1]) * g * g
    s = c[2] * x[4] + (1 - c[2]) * c[3] * g
    return [-c[5] * c[3] * x[1] - m / (jnp.sqrt(v) + c[4]), m, v, s]


# ---- COCOB (cpp/functors/cocob.h) -----------------------------------------------------------------
@_update("cocob", 7, (1, 3, 4, 5, 6), 3)
def cocob(c, x):
    p, p0 = x[1], x[2]
    g = c[0] * axpy(c[1], p, x[0])
    big_l = jnp.maximum(x[4], jnp.abs(g))
    big_g = x[5] + jnp.abs(g)
    r = x[6] - g * (p - p0)
    # max(r, 0) as a select (the same value, NaN included, but for the sign of a zero): XLA's CPU
    # fusion duplicates a maximum-with-0 into the increment's loop, which then reads the old
    # reward that R' is written over (so XLA copies the reward and the params first); a select
    # it computes once.
    r = jnp.where(r < 0, 0, r)
    big_c = x[3] - g
    dp = -p + (p0 + big_c / (big_l * jnp.maximum(big_g + big_l, c[2] * big_l)) * (big_l + r))
    return [dp, big_c, big_l, big_g, r]


# ---- Mechanic (cpp/functors/mechanic.h) -----------------------------------------------------------
@_reduce("mechanic_sums", 3, 4, 1)
def mechanic_sums(c, x):
    d = x[2] - x[1]
    return [x[0] * x[0], x[1] * x[1], x[0] * d, x[1] * d]


@_update("mechanic", 3, (0,), 2)
def mechanic(c, x):
    p, x0 = x[0], x[1]
    return [(x0 - c[1] * ((x0 - p) / c[0] - x[2])) - p]


# ---- MoMo, MoMo-Adam (cpp/functors/momo.h) -----------------------------------------------------
@_reduce("momo_sums", 3, 3, 1)
def momo_sums(c, x):
    m = c[0] * x[2] + (1 - c[0]) * x[0]
    return [x[0] * x[1], m * m, m * x[1]]


@_update("momo", 3, (1, 2), 3)
def momo(c, x):
    m = c[0] * x[2] + (1 - c[0]) * x[0]
    return [c[1] * x[1] - c[2] * m, m]


def momo_adam_precond(c, g, m, v):
    m_new = c[0] * m + (1 - c[0]) * g
    v_new = c[1] * v + (1 - c[1]) * (g * g)
    return c[2] + jnp.sqrt(v_new / c[3]), m_new, v_new


@_reduce("momo_adam_sums", 4, 3, 4)
def momo_adam_sums(c, x):
    pre, m, _ = momo_adam_precond(c, x[0], x[2], x[3])
    return [m * (m / pre), x[0] * x[1], m * x[1]]


@_update("momo_adam", 4, (1, 2, 3), 6)
def momo_adam(c, x):
    pre, m, v = momo_adam_precond(c, x[0], x[2], x[3])
    return [c[4] * x[1] - c[5] * m / pre, m, v]


# ---- Schedule-Free (cpp/functors/schedule_free.h) -------------------------------------------------
def schedule_free_step(c, y, z, u, u_again=None):
    """``(y' - y, z')``; ``u_again``: ``u`` computed apart, for the XLA form (schedule_free_adamw)."""
    b1, ck = c[0], c[1]
    z_new = z + u
    if in_xla_form():
        # The old z from the new: the params' loop reads z' (written over z), not z. Rounding
        # costs at most half an ulp of z', as much as optax's own increment y' - y costs.
        z = z_new - (u if u_again is None else u_again)
    x_prev = (y - (1 - b1) * z) / b1
    x = (1 - ck) * x_prev + ck * z_new
    return (b1 * x + (1 - b1) * z_new) - y, z_new


@_update("schedule_free", 3, (0, 1), 2)
def schedule_free(c, x):
    return list(schedule_free_step(c, x[0], x[1], x[2]))


@_update("schedule_free_sgd", 3, (1, 2), 4)
def schedule_free_sgd(c, x):
    u = -c[2] * axpy(c[3], x[1], x[0])
    return list(schedule_free_step(c, x[1], x[2], u))


@_update("schedule_free_adamw", 4, (1, 2, 3), 7)
def schedule_free_adamw(c, x):
    g = x[0]
    v = c[4] * x[3] + (1 - c[4]) * (g * g)
    u = -c[2] * axpy(c[3], x[1], g / (jnp.sqrt(v / c[6]) + c[5]))
    u_again = None
    if in_xla_form():
        # u once more, for the params' loop to recover z (schedule_free_step), written so that
        # XLA's CSE does not merge it with u: u's divide and square root then have one user each
        # and XLA computes them inside each loop. One u read by two loops is an expensive value
        # with two users, which XLA's CPU fusion writes to a temporary instead (a fresh buffer
        # written and read twice per step). It differs from u by an ulp of u at most.
        u_again = -c[2] * axpy(c[3], x[1], g * (1 / (jnp.sqrt(v * (1 / c[6])) + c[5])))
    return list(schedule_free_step(c, x[1], x[2], u, u_again)) + [v]


# ---- the gradient prologue (cpp/functors/prologue.h) ----------------------------------------------
PROLOGUE_COLS = 5  # s1, d1, c, s2, d2


def plus_nonzero(d, p, x):
    """``x + d * p`` where ``d != 0``, else ``x`` (never ``0 * p``, which is NaN for an infinite p)."""
    if isinstance(d, (int, float, np.number)):
        return x if d == 0 else x + d * p
    return jnp.where(d != 0, x + d * p, x)


def apply_prologue(c, g, p):
    """``g' = s2 * clamp(s1 * g + d1 * p, -c, c) + d2 * p`` (``c = inf``: no clamp)."""
    s1, d1, clip, s2, d2 = c
    x = plus_nonzero(d1, p, s1 * g)
    if not (isinstance(clip, np.floating) and np.isinf(clip)):
        x = jnp.where(x < -clip, -clip, jnp.where(x > clip, clip, x))  # NaN passes through
    return plus_nonzero(d2, p, s2 * x)


@_reduce("sum_sq", 1, 1, 0)
def sum_sq(c, x):
    return [x[0] * x[0]]


@_reduce("grad_sq", 2, 1, 0)
def grad_sq(c, x):
    return [x[0] * x[0]]


# NovoGrad's fused step (cpp/functors/layerwise.h), on the sum_sq reduce above.
def novograd_moment(nu, first, b2, one_minus_b2, g_sq):
    """NovoGrad's per-tensor second moment: ``|g|^2`` on the first step, else ``b2 nu + (1 - b2) |g|^2``."""
    return jnp.where(first, g_sq, b2 * nu + one_minus_b2 * g_sq)


@_fused("novograd_step", "sum_sq", "novograd", 9)
def novograd_step(c, s):  # c: nu, first, b1, b2, 1 - b2, eps, eps_root, wd, lr
    first = jnp.asarray(c[1]) != 0
    nu = novograd_moment(c[0], first, c[3], c[4], s[0])
    return [jnp.where(first, 0.0, c[2]), jnp.sqrt(nu + c[6]) + c[5], c[7], c[8]]


def _with_prologue(base: Functor) -> Functor:
    """``<name>_pre``: ``base`` with its gradient (stream 0) first replaced by :func:`apply_prologue`
    of the parameter (stream 1) and five more coefficients."""

    def math(c, x):
        n = base.n_coeffs
        return base.math(c[:n], [apply_prologue(c[n:], x[0], x[1]), *x[1:]])

    return dataclasses.replace(base, name=f"{base.name}_pre", n_coeffs=base.n_coeffs + PROLOGUE_COLS, math=math)


# Every functor that reads the gradient of an optimizer folding a prologue (cpp/functors/list.h).
for _name in ("grad_sq", "adamw", "lamb_norms", "lars_norms", "momentum", "novograd", "distance_norms", "scaled_sgd", "prodigy_sums",
              "prodigy", "cocob", "momo_sums", "momo", "momo_adam_sums", "momo_adam", "schedule_free_sgd", "schedule_free_adamw"):
    FUNCTORS[f"{_name}_pre"] = _with_prologue(FUNCTORS[_name])
