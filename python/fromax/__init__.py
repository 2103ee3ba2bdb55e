"""fromax: Fromage and learning-rate-free optimizers for JAX on fused multi-tensor XLA FFI kernels."""

from fromax import reference
from fromax._ffi import kernel_platforms
from fromax.fromage import FromageState, fromage
from fromax.norms import per_tensor_norms
from fromax.step import step

__version__ = "0.1.0"

__all__ = ["FromageState", "fromage", "kernel_platforms", "per_tensor_norms", "reference", "step"]
