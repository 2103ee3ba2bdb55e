// What every CUDA handler needs around its launches: error reporting, scratch alignment, grid size.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"

namespace fromax::cuda {

inline xla::ffi::Error CudaError(cudaError_t err, const char* what) {
  return xla::ffi::Error(xla::ffi::ErrorCode::kInternal, std::string("fromax: ") + what + ": " + cudaGetErrorString(err));
}

// Sub-allocations of one scratch block start on 256-byte boundaries.
inline size_t AlignUp(size_t n) { return (n + 255) & ~size_t{255}; }

// Grid-stride kernels: one block per work item, up to 2^20 blocks.
inline int64_t Blocks(int64_t work) { return work < (int64_t{1} << 20) ? work : (int64_t{1} << 20); }

inline xla::ffi::Error LastError(const char* what) {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? xla::ffi::Error::Success() : CudaError(err, what);
}

}  // namespace fromax::cuda
