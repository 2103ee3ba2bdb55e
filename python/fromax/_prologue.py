"""The gradient prologue: an optax.chain's gradient pre-processing folded into a fromax step.

``optax.chain(optax.clip_by_global_norm(1.0), fromax.adamw(1e-3))`` would make two more passes over
the gradients before AdamW's own (compute the clipped gradients, write them, read them again).
Folded, the gradient the optimizer's kernels read is

    g' = s2 * clamp(s1 * g + d1 * p, -c, c) + d2 * p

(``cpp/functors/prologue.h``), a few coefficients per tensor, computed here from the chain's
elements, in order:

* ``scale(k)``, ``scale_by_schedule(f)``: multiply (s and d of the outer affine map) by ``k``;
* ``add_decayed_weights(w)`` (no mask): add ``w`` to the outer ``d``;
* ``clip(c)``: the clamp (one per chain: a second clamp is not folded);
* ``clip_by_global_norm(m)``: ``scale(min(1, m / ||g'||))`` with the global norm of the gradient so
  far, from a reduction (``reduce_sq``) that the optimizer can share with its own (Fromage computes
  it from the per-tensor sums it needs anyway).

The folded elements of a fused step are :data:`ACTIVE` while it is traced: :mod:`fromax._engine` then
runs each functor's ``<name>_pre`` twin with the prologue's coefficients appended to its rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any, Callable, Iterator

import jax.numpy as jnp

from fromax._functors import is_static_zero

Array = Any


@dataclasses.dataclass(frozen=True)
class Op:
    """One folded element: ``kind`` in scale | add | clamp | global_clip, and its value (a scalar,
    an array, or for ``add`` a per-leaf vector)."""

    kind: str
    value: Any


@dataclasses.dataclass(frozen=True)
class Affine:
    """``g' = s2 * clamp(s1 * g + d1 * p, -c, c) + d2 * p``; each a scalar or an ``(n,)`` vector."""

    s1: Any = 1.0
    d1: Any = 0.0
    c: Any = float("inf")
    s2: Any = 1.0
    d2: Any = 0.0
    clamped: bool = False

    def then(self, op: Op) -> "Affine":
        if op.kind == "scale":
            k = op.value
            return dataclasses.replace(self, s2=self.s2 * k, d2=_times(self.d2, k)) if self.clamped else dataclasses.replace(self, s1=self.s1 * k, d1=_times(self.d1, k))
        if op.kind == "add":
            return dataclasses.replace(self, d2=_plus(self.d2, op.value)) if self.clamped else dataclasses.replace(self, d1=_plus(self.d1, op.value))
        if op.kind == "clamp":
            if self.clamped:
                raise ValueError("fromax: a second clip cannot be folded")
            return dataclasses.replace(self, c=op.value, clamped=True)
        raise ValueError(f"fromax: unknown prologue op {op.kind!r}")

    def columns(self) -> dict[str, Any]:
        """The prologue's coefficient columns, by their names in ``functors.h``."""
        return {"pre_scale": self.s1, "pre_decay": self.d1, "clip": self.c, "post_scale": self.s2, "post_decay": self.d2}

    def scale_only(self) -> Any:
        """``s`` if ``g' = s g`` (no parameter term, no clamp), else None."""
        if self.clamped or not (is_static_zero(self.d1) and is_static_zero(self.d2)):
            return None
        return self.s1 * self.s2

    def linear(self) -> tuple[Any, Any]:
        """``(s, d)`` with ``g' = s g + d p``, for a prologue without a clamp."""
        if self.clamped:
            raise ValueError("fromax: a clamped prologue is not linear")
        return self.s1 * self.s2, _plus(_times(self.d1, self.s2), self.d2)


def _times(d: Any, k: Any) -> Any:
    """``d * k`` that keeps a static zero static (so the kernel and XLA skip the ``d * p`` term)."""
    return d if is_static_zero(d) else d * k


def _plus(d: Any, w: Any) -> Any:
    return w if is_static_zero(d) else d + w


def resolve(ops: list[Op], reduce_norm: Callable[[Affine], Array]) -> Affine:
    """The prologue of ``ops`` with every global-norm clip turned into its scale: ``reduce_norm(affine)``
    is the global norm of the gradient after ``affine``. The factor is optax's:
    1 if ``||g|| < m``, else ``m / ||g||`` (NaN and infinite norms propagate as in optax)."""
    affine = Affine()
    for op in ops:
        if op.kind == "global_clip":
            norm = reduce_norm(affine)
            affine = affine.then(Op("scale", jnp.where(norm < op.value, 1.0, op.value / norm)))
        else:
            affine = affine.then(op)
    return affine


class Folding:
    """The folded elements of one fused step. The first functor call of the step resolves them
    (:func:`resolve`, with its own streams or sums) and the step's later calls reuse the result."""

    def __init__(self, ops: list[Op]):
        self.ops = ops
        self._affine: Affine | None = None

    def affine(self, reduce_norm: Callable[[Affine], Array]) -> Affine:
        if self._affine is None:
            self._affine = resolve(self.ops, reduce_norm)
        return self._affine


ACTIVE: contextvars.ContextVar[Folding | None] = contextvars.ContextVar("fromax_prologue", default=None)


def active() -> Folding | None:
    return ACTIVE.get()


@contextlib.contextmanager
def folded(folding: Folding | None) -> Iterator[None]:
    token = ACTIVE.set(folding)
    try:
        yield
    finally:
        ACTIVE.reset(token)
