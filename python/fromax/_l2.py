r"""Euclidean norms that neither underflow nor overflow where the norm itself is representable.

The plain ``sqrt(sum(x * x))`` in f32 loses every tensor whose elements are below about 1e-19 (their
squares flush to 0: a tensor of 1000 elements of 5e-20 gets norm 0, not 1.58e-18) and every tensor
with an element above about 1.8e19 (its square overflows: a norm of 1e27 becomes inf). The kernels
accumulate squares in f64, where neither happens for f32 data. Here, in the accumulator dtype itself,
the tensor is scaled by a power of two first:

.. math::
    m = \max_j |x_j| = f\,2^e \;(\tfrac12 \le f < 1),\qquad
    \|x\|_2 = 2^e \sqrt{\textstyle\sum_j (2^{-e} x_j)^2}

Scaling by a power of two is exact, the scaled elements are at most 1 (no overflow), and the largest
is at least 1/2, so the sum is at least 1/4 (what underflows is below 2^-126 of it). Two passes over
the data (a max, then a sum XLA fuses with the scaling) and no temporaries. ``m = 0``: 0; ``m`` inf or
NaN: the plain formula, which gives inf or NaN as it should.

Denormals: XLA's CPU backend and the kernels run with denormals flushed to zero (FTZ/DAZ), though
not every XLA op honours it alike (a comparison may read a denormal as 0 where a product does not).
So a tensor whose largest element is below the smallest normal number counts as zero here: norm 0,
as in the kernels; a denormal element beside normal ones adds nothing measurable either way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _regular(m: jax.Array) -> jax.Array:
    """Whether the largest magnitude ``m`` is a normal number (not 0, denormal, inf or NaN)."""
    return (m >= jnp.finfo(m.dtype).tiny) & jnp.isfinite(m)


def _irregular(m: jax.Array) -> jax.Array:
    """The norm where ``m`` is not regular: ``m`` itself if inf or NaN, else 0 (zeros, denormals)."""
    return jnp.where(jnp.isfinite(m), jnp.zeros((), m.dtype), m)


def _scaled_norm(x: jax.Array) -> jax.Array:
    # max propagates NaN: m is NaN if any element is, else inf if any is, and then m is the norm.
    m = jnp.max(jnp.abs(x)) if x.size else jnp.zeros((), x.dtype)
    regular = _regular(m)
    _, e = jnp.frexp(jnp.where(regular, m, 1))
    # 2^-e, kept normal both ways (XLA's CPU flushes a denormal scale to 0, and 2^-e must not reach
    # inf): for the largest m the scaled elements then reach 4, still far from overflow.
    info = jnp.finfo(x.dtype)
    e = jnp.clip(e, info.minexp + 1, info.maxexp - 2)
    scale = jnp.ldexp(jnp.ones((), x.dtype), -e)  # a runtime value: XLA cannot fold it into the square
    return jnp.where(regular, jnp.sqrt(jnp.sum(jnp.square(x * scale))) / scale, _irregular(m))


@jax.custom_jvp
def l2_norm(x: jax.Array) -> jax.Array:
    r""":math:`\|x\|_2` of all of ``x`` (floating, the accumulator dtype: f32 or f64), accurate to
    rounding wherever the result is representable; NaN if any element is NaN, else inf if any is.

    Derivative :math:`\langle x, \dot x\rangle / \|x\|`, and 0 at :math:`x = 0` (a zero tensor's
    norm, as :func:`fromax.reference.norm_from_squared`).
    """
    return _scaled_norm(x)


@l2_norm.defjvp
def _l2_norm_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    norm = l2_norm(x)
    positive = norm > 0
    # <x, dx> / |x| = <x/|x|, dx>: the unit vector first, so neither the dot product nor a square overflows.
    unit = x / jnp.where(positive, norm, 1)
    return norm, jnp.where(positive, jnp.sum(unit * dx), jnp.zeros((), norm.dtype))


def hypot(norms: jax.Array, axis=None) -> jax.Array:
    r""":math:`\sqrt{\sum_i n_i^2}` of non-negative ``norms`` (per-tensor norms into a global norm,
    shards' partial norms into a tensor's) with no overflow or underflow: the largest first,
    :math:`m \sqrt{\sum_i (n_i / m)^2}`. 0 if all are 0 (or denormal); NaN if any is NaN, else inf
    if any is."""
    m = jnp.max(norms, axis)
    regular = _regular(m)
    safe = jnp.where(regular, m, 1)
    scaled = norms / (jnp.expand_dims(safe, axis) if axis is not None else safe)
    # sqrt only of what the result uses (a discarded sqrt(0) would still send NaN into a derivative)
    out = safe * jnp.sqrt(jnp.where(regular, jnp.sum(scaled * scaled, axis), 1))
    return jnp.where(regular, out, _irregular(jnp.where(jnp.isnan(jnp.sum(norms, axis)), jnp.nan, m)))


def psum_norms(norms: jax.Array, axes) -> jax.Array:
    """Partial norms of one tensor's shards (elementwise over ``norms``) into the tensor's norm over the
    mesh ``axes``: :func:`hypot` across devices, as a ``pmax`` then a ``psum`` of scaled squares."""
    m = jax.lax.pmax(norms, axes)
    regular = _regular(m)
    safe = jnp.where(regular, m, 1)
    scaled = norms / safe
    total = jax.lax.psum(scaled * scaled, axes)
    # m is NaN where a shard's norm is, else inf where one is: then m is the norm.
    return jnp.where(regular, safe * jnp.sqrt(jnp.where(regular, total, 1)), _irregular(m))
