"""Pure-JAX reference of every kernel's math (``backend="xla"``).

This is the test oracle for the FFI kernels and the fallback where no kernel is compiled. The
per-tensor coefficient functions here are also what the two-phase (reduce, then update) kernel path
evaluates between its two calls, and ``cpp/fromage.h`` is the same math in C++, line for line.

Accumulation dtype: f32 for f32/bf16/f16 storage, f64 for f64 (see :func:`acc_dtype`).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fromax._sharding import varying_axes

Array = jax.Array


def acc_dtype(dtype) -> np.dtype:
    """Accumulator dtype for a stored dtype: f64 for f64, f32 otherwise (bf16/f16/f32)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def sums(a: Sequence[Array], b: Sequence[Array] | None = None) -> Array:
    """Per-tensor sums of one accumulator group.

    Returns shape (n, 1) holding ``sum(a_i**2)``, or with ``b`` shape (n, 3) holding
    ``(sum(a_i**2), sum(b_i**2), sum(a_i*b_i))``, in the group's accumulator dtype.
    """
    acc = acc_dtype(a[0].dtype)
    rows = []
    for i, ai in enumerate(a):
        x = ai.astype(acc)
        row = [jnp.sum(x * x)]
        if b is not None:
            y = b[i].astype(acc)
            row += [jnp.sum(y * y), jnp.sum(x * y)]
        row = jnp.stack(row)
        # Inside shard_map, a block that varies over manual mesh axes is a shard of the tensor split
        # along them: its sums are partial (see fromax._sharding).
        split = varying_axes(row)
        rows.append(jax.lax.psum(row, tuple(sorted(split))) if split else row)
    return jnp.stack(rows)


def axpby(coeffs: Array, x: Sequence[Array], y: Sequence[Array]) -> list[Array]:
    """``out_i = coeffs[i, 0] * x_i + coeffs[i, 1] * y_i``, computed in the accumulator dtype, stored as x_i."""
    acc = coeffs.dtype
    return [(coeffs[i, 0] * xi.astype(acc) + coeffs[i, 1] * yi.astype(acc)).astype(xi.dtype) for i, (xi, yi) in enumerate(zip(x, y))]


def _safe_sqrt(x: Array, positive: Array) -> Array:
    """sqrt(x) where ``positive``, 1 elsewhere (a finite derivative in both branches)."""
    return jnp.sqrt(jnp.where(positive, x, 1))


def norm_from_squared(sq: Array) -> Array:
    """``sqrt(sq)`` whose derivative at ``sq = 0`` is 0 (a zero tensor's norm), not NaN."""
    return jnp.where(sq > 0, _safe_sqrt(sq, sq > 0), 0)


def fromage_coefficients(
    ww: Array, gg: Array, wg: Array, lr: Array, p_bound: Array, init_norms: Array | None, delta: bool
) -> tuple[Array, Array]:
    r"""Per-tensor Fromage coefficients ``(a, b)`` with ``W_new = a W + b g`` (or ``W_new - W`` if delta).

    .. math::
        r = \|W\| / \|g\| \text{ if } \|W\|>0 \text{ and } \|g\|>0 \text{ else } 1,\qquad
        a = 1/\sqrt{1+\eta^2},\quad b = -\eta r/\sqrt{1+\eta^2}

    With ``init_norms`` (``p_bound`` set), where ``\|W_0\| > 0`` and
    ``\|W_new\| = \sqrt{a^2\|W\|^2 + 2ab\langle W,g\rangle + b^2\|g\|^2} > p_{bound}\|W_0\|``, both are
    scaled by ``p_bound \|W_0\| / \|W_new\|``. With ``delta``, ``a`` becomes ``a - 1``, evaluated
    without cancellation.
    """
    # Square roots only of positive values, even in the branch jnp.where discards: under jax.grad a
    # discarded sqrt(0) would still send inf * 0 = NaN into the derivative (zero-initialised biases).
    both = (ww > 0) & (gg > 0)
    ratio = jnp.where(both, _safe_sqrt(ww, both) / _safe_sqrt(gg, both), jnp.ones_like(ww))
    root = jnp.sqrt(1 + lr * lr)
    a = 1 / root
    b = -(lr * ratio) / root
    scale = jnp.ones_like(ww)
    if init_norms is not None:
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


def fromage_coefficient_rows(s: Array, lr: Array, p_bound: Array, init_norms: Array | None, delta: bool) -> Array:
    """:func:`fromage_coefficients` from the (n, 3) per-tensor sums of :func:`sums`, as the (n, 2)
    rows ``(a, b)`` that :func:`axpby` (and the ``fromax_axpby`` kernel) take."""
    a, b = fromage_coefficients(s[:, 0], s[:, 1], s[:, 2], lr, p_bound, init_norms, delta)
    return jnp.stack([a, b], axis=-1)


def fromage(
    lr: Array, p_bound: Array, init_norms: Array | None, w: Sequence[Array], g: Sequence[Array], delta: bool
) -> list[Array]:
    """One Fromage step for one accumulator group: new tensors (or their deltas)."""
    s = sums(w, g)
    return axpby(fromage_coefficient_rows(s, lr, p_bound, init_norms, delta), w, g)
