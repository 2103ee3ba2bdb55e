r"""Euclidean norms that neither underflow nor overflow where the norm itself is representable.

The plain ``sqrt(sum(x * x))`` in f32 loses every tensor whose elements are below about 1e-19 (their
squares flush to 0: a tensor of 1000 elements of 5e-20 gets norm 0, not 1.58e-18) and every tensor
with an element above about 1.8e19 (its square overflows: a norm of 1e27 becomes inf). The kernels
accumulate squares in f64, where neither happens for f32 data. Here, in the accumulator dtype itself,
the tensor is scaled by a power of two first:

.. math::
    m = \max_j |x_j|,\quad 2^e \le m < 2^{e+1},\qquad
    \|x\|_2 = 2^e \sqrt{\textstyle\sum_j (2^{-e} x_j)^2}

Scaling by a power of two is exact, the scaled elements are below 2 (no overflow), and the largest
is at least 1, so the sum is at least 1 (what underflows is below 2^-126 of it). Two passes over the
data (a max, then a sum of scaled squares). ``m = 0``: 0; ``m`` inf or NaN: ``m``.

Compile time: a program holds thousands of norms when a model has thousands of tensors, and XLA's
compile time grows with the ops per tensor (per tensor, a max, a frexp scale and a scaled sum took
9x longer to compile than ``sqrt(sum(x * x))``). So :func:`l2_norms` reduces all small tensors
together (rows of 256, segment reductions: a constant number of ops), and the scale comes from the
exponent bits, not frexp/ldexp.

Denormals: XLA's CPU backend and the kernels run with denormals flushed to zero (FTZ/DAZ), though
not every XLA op honours it alike (a comparison may read a denormal as 0 where a product does not).
So a tensor whose largest element is below the smallest normal number counts as zero here: norm 0,
as in the kernels; a denormal element beside normal ones adds nothing measurable either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# Tensors of at most this many elements are normed together (see l2_norms); larger ones one by one.
BATCHED_MAX_SIZE = 4096
# The rows the batched tensors are cut into (a tensor's last row padded with zeros).
_ROW = 256


def _regular(m: jax.Array) -> jax.Array:
    """Whether the largest magnitude ``m`` is a normal number (not 0, denormal, inf or NaN)."""
    return (m >= jnp.finfo(m.dtype).tiny) & (m < jnp.inf)


def _irregular(m: jax.Array) -> jax.Array:
    """The norm where ``m`` is not regular: ``m`` itself if inf or NaN, else 0 (zeros, denormals)."""
    return jnp.where(m < jnp.inf, jnp.zeros((), m.dtype), m)


def _power_of_two_scale(m: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(regular, up, down)`` for largest magnitudes ``m``: ``up`` = 2^e with 2^e <= m < 2^(e+1) and
    ``down`` = 2^-e, both exact and normal (e at most maxexp - 2, so 2^-e cannot reach a denormal;
    for the largest m the scaled elements then reach 4, far from overflow); 1 where m is not regular.

    From the float's bits (the exponent field alone), not frexp/ldexp: a handful of integer ops
    instead of frexp's and ldexp's dozens, which matters when a program holds thousands of norms."""
    info = jnp.finfo(m.dtype)
    ints = jnp.int32 if m.dtype.itemsize == 4 else jnp.int64
    bias = info.maxexp - 1  # 127 for f32: the exponent field of 2^e is e + bias
    regular = _regular(m)
    field = jax.lax.bitcast_convert_type(jnp.where(regular, m, 1), ints) & ((2 * bias + 1) << info.nmant)
    field = jnp.minimum(field, (2 * bias - 1) << info.nmant)
    up = jax.lax.bitcast_convert_type(field, m.dtype)
    down = jax.lax.bitcast_convert_type((2 * bias << info.nmant) - field, m.dtype)  # field bias - e
    return regular, up, down


def _combine(m: jax.Array, scaled_sum_sq: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """The norm from the largest magnitude ``m`` and the sum of squares of the elements scaled by 2^-e."""
    regular, up, down = _power_of_two_scale(m)
    return jnp.where(regular, jnp.sqrt(scaled_sum_sq(down)) * up, _irregular(m))


def _scaled_norm(x: jax.Array) -> jax.Array:
    # max propagates NaN: m is NaN if any element is, else inf if any is, and then m is the norm.
    m = jnp.max(jnp.abs(x)) if x.size else jnp.zeros((), x.dtype)
    return _combine(m, lambda down: jnp.sum(jnp.square(x * down)))


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


# ---- many tensors at once ---------------------------------------------------------------------------
def _rows(xs: Sequence[jax.Array]) -> tuple[jax.Array, dict]:
    """All of ``xs`` cut into rows of ``_ROW`` elements, each tensor's last row padded with zeros (an
    empty tensor gets one row of zeros), and the segment arguments naming each row's tensor."""
    counts = [max(1, -(-x.size // _ROW)) for x in xs]
    pieces = []
    for x, count in zip(xs, counts):
        pieces.append(x.ravel())
        if count * _ROW > x.size:
            pieces.append(jnp.zeros(count * _ROW - x.size, x.dtype))
    owner = np.repeat(np.arange(len(xs)), counts)
    return jnp.concatenate(pieces).reshape(-1, _ROW), dict(segment_ids=owner, num_segments=len(xs), indices_are_sorted=True)


def _batched_norms(xs: Sequence[jax.Array]) -> jax.Array:
    rows, segments = _rows(xs)
    m = jax.ops.segment_max(jnp.max(jnp.abs(rows), axis=1), **segments)
    owner = segments["segment_ids"]
    return _combine(m, lambda down: jax.ops.segment_sum(jnp.sum(jnp.square(rows * down[owner][:, None]), axis=1), **segments))


def _batched_sums(xs: Sequence[jax.Array]) -> jax.Array:
    rows, segments = _rows(xs)
    return jax.ops.segment_sum(jnp.sum(rows, axis=1), **segments)


def _small_together(xs: Sequence[jax.Array], one, together) -> jax.Array:
    """``one(x)`` for each of ``xs``, as an (n,) vector: the tensors of at most ``BATCHED_MAX_SIZE``
    elements all at once by ``together`` (a program whose size does not grow with their number: per
    tensor, a max, a scaled sum and their scale took XLA 9x longer to compile than ``sqrt(sum(x*x))``),
    larger tensors (a model has few) one by one, where concatenating them would copy more than it saves."""
    small = [i for i, x in enumerate(xs) if x.size <= BATCHED_MAX_SIZE]
    if len(small) < 2:
        return jnp.stack([one(x) for x in xs])
    values = together([xs[i] for i in small])
    if len(small) == len(xs):
        return values
    position = {i: k for k, i in enumerate(small)}
    return jnp.stack([values[position[i]] if i in position else one(x) for i, x in enumerate(xs)])


def tensor_sums(xs: Sequence[jax.Array]) -> jax.Array:
    """The (n,) vector of the sums of all elements of each of ``xs`` (one dtype), the small tensors'
    in rows of 256 summed, then added up row by row."""
    return _small_together(list(xs), jnp.sum, _batched_sums)


@jax.custom_jvp
def l2_norms(xs: Sequence[jax.Array]) -> jax.Array:
    r"""The (n,) vector of :math:`\|x_i\|_2` for tensors ``xs`` (one floating dtype, the accumulator
    dtype), each as :func:`l2_norm`, in a program whose size does not grow with the number of small
    tensors: those of at most ``BATCHED_MAX_SIZE`` elements are cut into rows of 256 (their last
    padded with zeros) and reduced together (each tensor's largest magnitude by a segment max over
    its rows' maxima, then its scaled sum of squares by a segment sum)."""
    return _small_together(list(xs), _scaled_norm, _batched_norms)


@l2_norms.defjvp
def _l2_norms_jvp(primals, tangents):
    (xs,), (dxs,) = primals, tangents
    norms = l2_norms(xs)
    positive = norms > 0
    safe = jnp.where(positive, norms, 1)
    dots = tensor_sums([x / safe[i] * dx for i, (x, dx) in enumerate(zip(xs, dxs))])
    return norms, jnp.where(positive, dots, jnp.zeros((), norms.dtype))


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
