"""Fromage (Bernstein, Vahdat, Yue & Liu, NeurIPS 2020) as an optax transformation on fused kernels."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fromax import _engine, _ffi, _prologue
from fromax._eager import eager_jit
from fromax._stacked import stackable
from fromax._functors import fromage_coefficients, is_static_zero, norm_from_squared, plus_nonzero
from fromax._l2 import hypot
from fromax._validate import NONNEGATIVE, POSITIVE, checked, leaves_with_paths, matching_leaves

Array = jax.Array


class FromageState(NamedTuple):
    """State of :func:`fromage`.

    Attributes
    ----------
    count : int32 step counter (feeds a learning-rate schedule).
    init_norms : ``||W_0||`` of every parameter leaf, in flattening order (only with ``p_bound``;
        f64 if any leaf is f64, else f32), else None.
    """

    count: Array
    init_norms: Array | None


@eager_jit
@stackable
@checked(learning_rate=NONNEGATIVE, min_norm=NONNEGATIVE, p_bound=POSITIVE)
def fromage(
    learning_rate: optax.ScalarOrSchedule = 0.01,
    min_norm: float | None = None,
    p_bound: float | None = None,
    *,
    backend: str = "auto",
) -> optax.GradientTransformationExtraArgs:
    r"""Fromage: the Frobenius-matched gradient descent of Bernstein et al. (2020).

    Every leaf :math:`W` (one layer's tensor) with gradient :math:`g` is updated on its own:

    .. math::
        W \leftarrow \frac{W - \eta\,\frac{\|W\|}{\|g\|}\,g}{\sqrt{1+\eta^2}}
        \quad\text{unless } \|W\| = 0 \text{ or } \|g\| = 0, \qquad
        W \leftarrow \frac{W - \eta\, g}{\sqrt{1+\eta^2}} \quad\text{if one is.}

    The step moves each layer by a relative distance :math:`\eta` and the :math:`1/\sqrt{1+\eta^2}`
    factor undoes the norm growth that such a step causes, so the default :math:`\eta = 0.01`
    (the paper's) works across architectures without tuning.

    ``p_bound``: after the update, if :math:`\|W\| > p_{bound}\,\|W_0\|` (:math:`W_0` is the leaf at
    ``init``) the leaf is rescaled to norm :math:`p_{bound}\,\|W_0\|`. Leaves with
    :math:`\|W_0\| = 0` (zero-initialised biases) are left **uncapped**; the paper's code caps them at
    0, i.e. freezes them.

    ``min_norm`` (optax.fromage's argument): given, each norm :math:`\|x\|` is replaced by
    ``min_norm`` where :math:`\|x\| \le` ``min_norm``, as ``optax.fromage`` does (its default
    1e-6 slows a zero-initialised bias' first steps by a factor :math:`\|g\| / 10^{-6}`); None, the
    default, is the paper's exact rule above (the same as ``min_norm=0``). A NaN or infinite norm
    propagates as in optax: it poisons its tensor's step.

    Differences from ``optax.fromage``: ``min_norm`` defaults to the paper's rule instead of 1e-6;
    ``p_bound`` is supported; the fused step is one multi-tensor kernel call for the whole pytree
    (per-tensor sums, coefficients and update, a small tensor in one visit). With the same
    ``min_norm`` (and a constant or scheduled learning rate) ``optax.fromage`` computes the same math.

    Sharded parameters (``jax.jit`` with sharded arguments, or inside ``jax.shard_map``): each
    device updates its own shards, and only the per-tensor sums :math:`\|W\|^2, \|g\|^2,
    \langle W, g\rangle` are all-reduced; outputs keep the parameters' shardings. ``jax.vmap``
    runs batched kernels; ``jax.grad`` through a step differentiates the reference math.

    Parameters
    ----------
    learning_rate : float or optax schedule
        :math:`\eta`, default 0.01. Traced: changing it or scheduling it never recompiles.
    min_norm : float or None
        optax's norm floor (see above); None (default): the paper's rule.
    p_bound : float or None
        Norm bound relative to the initial norm (the paper uses 1.0 for some experiments).
    backend : {"auto", "ffi", "xla"}
        "auto": the compiled kernels where registered for JAX's default platform, else the pure-JAX
        reference; "ffi": require the kernels; "xla": the pure-JAX reference.
    stacked_axes : None, int, tuple of ints, pytree prefix of the params, or callable, keyword-only
        The stacked (scanned-layer) axes of each leaf: ``(path, leaf) -> axes`` for a callable. The
        per-tensor quantities are then per slice: a (24, d, d) leaf stacked on axis 0 is updated as 24
        (d, d) leaves would be. Default None: every leaf is one tensor (see the README's "Stacked
        layers").

    Returns
    -------
    optax.GradientTransformationExtraArgs
        ``update`` returns :math:`W_{new} - W` (the optax contract); :func:`fromax.step` applies the
        fused step and writes :math:`W_{new}` directly (in place when the params are donated).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, fromax
    >>> params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    >>> tx = fromax.fromage(learning_rate=0.01)
    >>> state = tx.init(params)
    >>> grads = jax.grad(lambda p: jnp.sum((jnp.ones(3) @ p["w"] + p["b"] - 1.0) ** 2))(params)
    >>> updates, state = tx.update(grads, state, params)
    >>> params = optax.apply_updates(params, updates)
    >>> params, state = fromax.step(tx, grads, state, params)  # fused
    """
    floor = 0.0 if min_norm is None else min_norm

    def init_fn(params: Any) -> FromageState:
        count = jnp.zeros([], jnp.int32)
        _, leaves, _ = leaves_with_paths(params, "parameter")  # unsupported leaves fail here already
        if p_bound is None:
            return FromageState(count, None)
        dtype = _engine.coeff_dtype(leaves)
        if not leaves:
            return FromageState(count, jnp.zeros([0], dtype))
        norms = _engine.reduce("norm", _engine.rows("norm", len(leaves), dtype), [leaves], kernels=_ffi.use_kernels(backend), fold=False)
        return FromageState(count, norms[:, 0])

    def apply(grads: Any, state: FromageState, params: Any, delta: _engine.Output) -> tuple[Any, FromageState]:
        _, g_leaves, p_leaves, treedef = matching_leaves(grads, params, "fromax.fromage")
        n = len(p_leaves)
        if p_bound is not None and (state.init_norms is None or state.init_norms.shape != (n,)):
            raise ValueError(
                "fromax.fromage: state.init_norms does not match the parameter tree "
                f"({None if state.init_norms is None else state.init_norms.shape} for {n} leaves); "
                "was the state made by this transformation's init on these params?"
            )
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        kernels = _ffi.use_kernels(backend)
        dtype = _engine.coeff_dtype(p_leaves)
        bound = 0.0 if p_bound is None else p_bound
        norms = 0.0 if p_bound is None else state.init_norms  # |W0| per tensor; 0: uncapped
        streams = [g_leaves, p_leaves]
        folding = None if delta else _prologue.active()
        if folding is not None:
            out = _folded_step(folding, _engine.rows("fromage", n, dtype, lr=lr, p_bound=bound, p0_norm=norms, min_norm=floor), streams, kernels)
        elif not delta:  # the fused step: one call per group, new params written over the old
            _, (out,) = _engine.fused("fromage", _engine.rows("fromage", n, dtype, lr=lr, p_bound=bound, p0_norm=norms, min_norm=floor), streams, kernels=kernels)
        else:  # the optax contract: the sums on the kernel, the update in XLA (see fromax._engine)
            sums = _engine.reduce("fromage_sums", _engine.rows("fromage_sums", n, dtype), streams, kernels=kernels, fold=False)
            s = _engine.sums_by_name("fromage_sums", sums)
            a, b = fromage_coefficients(s.p_norm, s.g_norm, s.pg, jnp.asarray(lr, dtype), bound, norms, delta=True, min_norm=floor)
            (out,) = _engine.update("axpby", _engine.rows("axpby", n, dtype, a=a, b=b), streams, kernels=kernels, delta=_engine.Output.INCREMENT, fold=False)
        new_state = FromageState(optax.safe_increment(state.count), state.init_norms)
        return jax.tree_util.tree_unflatten(treedef, out), new_state

    def update_fn(updates: Any, state: FromageState, params: Any = None, **extra_args: Any):
        del extra_args
        return apply(updates, state, params, delta=_engine.Output.INCREMENT)

    def fused_step(grads: Any, state: FromageState, params: Any, **extra_args: Any) -> tuple[Any, FromageState]:
        del extra_args
        return apply(grads, state, params, delta=_engine.Output.NEW)

    update_fn.fromax_fused_step = fused_step  # type: ignore[attr-defined]  # found by fromax.step
    update_fn.fromax_folds = FOLDS  # type: ignore[attr-defined]  # see fromax._fusion
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# What Fromage folds of a chain's gradient pre-processing: linear maps of g and p, whose per-tensor
# sums follow from its own (no clamp: clamp(g) has sums of its own).
FOLDS = frozenset({"scale", "add", "global_clip"})


def _combined_norm(s, g, d, w, wg):
    """``|s g + d W|`` from ``|g|``, ``|W|`` and ``<W, g>``, scaled by the larger of ``|s||g|`` and
    ``|d||W|`` so that no norm is squared: ``M sqrt(x^2 + 2 x y cos + y^2)``."""
    x, y = s * g, d * w
    m = jnp.maximum(jnp.abs(x), jnp.abs(y))
    safe = jnp.where(m > 0, m, 1)
    both = (g > 0) & (w > 0)
    cos = jnp.where(both, (wg / jnp.where(both, w, 1)) / jnp.where(both, g, 1), 0)
    xs, ys = x / safe, y / safe
    q = xs * xs + 2 * xs * ys * cos + ys * ys
    return jnp.where(m > 0, m * norm_from_squared(q), m)


def _folded_step(folding: _prologue.Folding, coeffs: _engine.Coefficients, streams: list, kernels: bool) -> list:
    """The fused step on ``g' = s g + d p`` (the folded prologue) from the sums of ``W`` and ``g``:
    ``|g'| = hypot-like combination of |s||g| and |d||W|`` (:func:`_combined_norm`: ``|g'|^2 = s^2 |g|^2 +
    2sd <W,g> + d^2 |W|^2`` without squaring a norm), ``<W,g'> = s <W,g> + d |W|^2``, and
    ``dW = a W + b g' = (a + b d) W + (b s) g`` (``a``: the increment's, ``1/root - 1``): the same two passes as without a prologue, and the
    global norm of a folded clip_by_global_norm comes from the same sums."""
    n, dtype = coeffs.n, coeffs.dtype
    sums = _engine.reduce("fromage_sums", _engine.rows("fromage_sums", n, dtype), streams, kernels=kernels, fold=False)
    named = _engine.sums_by_name("fromage_sums", sums)
    w, g, wg = named.p_norm, named.g_norm, named.pg

    def folded_sums(affine: _prologue.Affine) -> tuple[Array, Array, Array]:
        s, d = affine.linear()
        if is_static_zero(d):
            return w, jnp.abs(s) * g, s * wg
        return w, _combined_norm(s, g, d, w, wg), s * wg + d * (w * w)

    affine = folding.affine(lambda a: hypot(folded_sums(a)[1]))
    s, d = affine.linear()
    c = coeffs.named()
    a, b = fromage_coefficients(*folded_sums(affine), jnp.asarray(c["lr"], dtype), c["p_bound"], c["p0_norm"], True, c["min_norm"])
    rows = _engine.rows("axpby", n, dtype, a=plus_nonzero(d, b, a), b=b * s)
    (out,) = _engine.update("axpby", rows, streams, kernels=kernels, delta=_engine.Output.NEW, fold=False)
    return out
