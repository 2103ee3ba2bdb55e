// What every CUDA handler needs around its launches: the launch helper, shared memory, the stream
// and scratch contexts, error reporting, scratch alignment, grid size.
//
// The same source builds two ways: with nvcc for the GPU, and with the host compiler against
// cuda/emulation (FROMAX_CUDA_EMULATION: the toolkit headers replaced by an emulation that runs
// the grids on CPU threads, so CI executes this engine without a GPU). The only differences
// between the two builds are in this file.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

#if defined(FROMAX_CUDA_EMULATION)
#include "emulation/grid.h"
#endif

// A kernel's shared array: `__shared__ type name[count]` on the device; in the emulation, the
// block's next `count` elements of shared memory (per block, poisoned before each block).
#if defined(FROMAX_CUDA_EMULATION)
#define FROMAX_SHARED(type, name, count) \
  type* const name = static_cast<type*>(::fromax::emulation::SharedBytes(sizeof(type) * (count), alignof(type)))
#else
#define FROMAX_SHARED(type, name, count) __shared__ type name[count]
#endif

namespace fromax::cuda {

// Every launch: `blocks` blocks of `threads` threads on `stream`, no dynamic shared memory.
template <class... Params, class... Args>
void Launch(void (*kernel)(Params...), int64_t blocks, int threads, cudaStream_t stream, Args... args) {
#if defined(FROMAX_CUDA_EMULATION)
  (void)stream;  // emulated launches complete in order before they return
  emulation::RunGrid(blocks, threads, [&] { kernel(Params(args)...); });
#else
  kernel<<<dim3(unsigned(blocks)), threads, 0, stream>>>(Params(args)...);
#endif
}

// The largest alignment XLA's FFI scratch allocator accepts (it refuses more with "Unsupported
// alignment"); its device allocator hands out blocks aligned far beyond this (256 bytes), but only 16
// is promised, which is what every section of a table needs (pointers, doubles, 16-byte groups).
inline constexpr size_t kScratchAlignment = 16;

#if defined(FROMAX_CUDA_EMULATION)
// The call's stream: a token (emulated work is done when its launch returns).
struct StreamContext {};
// Scratch memory for one call, in host memory, freed when the handler's arguments are destroyed
// (after the handler returns: emulated launches have finished by then).
class Scratch {
 public:
  std::optional<void*> Allocate(size_t size, size_t alignment) {
    // As XLA's FFI does (ffi_api.cc): alignments past 16 bytes or not a power of two are refused.
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > kScratchAlignment) return std::nullopt;
    void* p = nullptr;
    if (posix_memalign(&p, alignment < sizeof(void*) ? sizeof(void*) : alignment, size == 0 ? 1 : size) != 0)
      return std::nullopt;
    blocks_.push_back(p);
    return p;
  }
  Scratch() = default;
  Scratch(Scratch&& o) noexcept : blocks_(std::move(o.blocks_)) { o.blocks_.clear(); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    for (void* p : blocks_) free(p);
  }

 private:
  std::vector<void*> blocks_;
};
#else
using StreamContext = xla::ffi::PlatformStream<cudaStream_t>;
using Scratch = xla::ffi::ScratchAllocator;
#endif

inline xla::ffi::Error CudaError(cudaError_t err, const char* what) {
  return xla::ffi::Error(xla::ffi::ErrorCode::kInternal, std::string("fromax: ") + what + ": " + cudaGetErrorString(err));
}

// Sub-allocations of one scratch block start at 256-byte offsets from its (16-byte aligned) start.
inline size_t AlignUp(size_t n) { return (n + 255) & ~size_t{255}; }

// Grid-stride kernels: one block per work item, up to 2^20 blocks.
inline int64_t Blocks(int64_t work) { return work < (int64_t{1} << 20) ? work : (int64_t{1} << 20); }

inline xla::ffi::Error LastError(const char* what) {
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? xla::ffi::Error::Success() : CudaError(err, what);
}

}  // namespace fromax::cuda

#if defined(FROMAX_CUDA_EMULATION)
namespace xla::ffi {
template <>
struct CtxDecoding<fromax::cuda::StreamContext> {
  using Type = cudaStream_t;
  static std::optional<Type> Decode(const XLA_FFI_Api*, XLA_FFI_ExecutionContext*, DiagnosticEngine&) {
    return cudaStream_t{nullptr};
  }
};
template <>
struct CtxDecoding<fromax::cuda::Scratch> {
  using Type = fromax::cuda::Scratch;
  static std::optional<Type> Decode(const XLA_FFI_Api*, XLA_FFI_ExecutionContext*, DiagnosticEngine&) {
    return fromax::cuda::Scratch();
  }
};
}  // namespace xla::ffi
#endif
