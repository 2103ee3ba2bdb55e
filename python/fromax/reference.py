"""The pure-JAX side of the kernels' math (``backend="xla"``).

Every functor's math, the oracle the kernels are tested against, the fallback where no kernel is
compiled and the kernels' derivative rule, is in :mod:`fromax._functors` (one entry per FFI target,
next to its C++ functor in ``cpp/functors/``). This module keeps the public helpers around it.

Accumulation dtype: f32 for f32/bf16/f16 storage, f64 for f64 (see :func:`acc_dtype`).
"""

from __future__ import annotations

import numpy as np

from fromax._functors import fromage_coefficients, norm_from_squared

__all__ = ["acc_dtype", "fromage_coefficients", "norm_from_squared"]


def acc_dtype(dtype) -> np.dtype:
    """Accumulator dtype for a stored dtype: f64 for f64, f32 otherwise (bf16/f16/f32)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)
