// The part of CUDA that fromax's CUDA engine (cuda/) uses, for a host C++ compiler: the same kernel
// and handler source compiled a second time runs on the CPU, so that CI executes it without a GPU.
// Found instead of the toolkit's <cuda_runtime.h> through the include path of the emulated build
// (CMakeLists.txt, FROMAX_CUDA_EMULATION); nvcc builds never see this directory.
//
// What it emulates, and how faithfully (grid.h has the execution model):
//   - __global__/__device__/__host__ functions are plain functions; a launch (cuda/launch.cuh's
//     Launch, `<<<...>>>` under nvcc) runs the grid block by block on a persistent pool of real
//     threads, blockDim of them per block; threadIdx, blockIdx, blockDim and gridDim are per thread;
//     __syncthreads() is a real barrier (one every thread of the block must reach: a thread that
//     leaves the kernel while others wait at one is reported as a launch failure, where a GPU would
//     hang or misbehave); shared memory (FROMAX_SHARED) is per block, poisoned with NaN bytes
//     before each block and limited to 48 KiB per block as statically declared shared memory is.
//   - Streams are a token; a launch and cudaMemcpyAsync complete before they return (ordering on
//     one stream is kept trivially). Device memory is host memory.
//   - A launch with an invalid configuration (no or too many threads, a grid over the device
//     limits) does not run and sets the sticky error cudaGetLastError returns, as on a device.
//   - No warp-level intrinsic is provided: the kernels do not use any (a kernel that starts to
//     fails to compile here, and must add its emulation with CUDA's semantics first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// Function and variable qualifiers.
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
};
struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};

// Per-thread built-in variables, set by the grid runner (grid.h) on each worker thread.
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{};
inline thread_local dim3 gridDim{};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace fromax::emulation {
// The sticky launch error of this host thread (cudaGetLastError's), set by the grid runner.
inline thread_local cudaError_t last_error = cudaSuccess;
void SyncThreads();  // grid.cc
}  // namespace fromax::emulation

inline void __syncthreads() { fromax::emulation::SyncThreads(); }

inline const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t err = fromax::emulation::last_error;
  fromax::emulation::last_error = cudaSuccess;
  return err;
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice || (count > 0 && (dst == nullptr || src == nullptr)))
    return cudaErrorInvalidValue;
  if (count > 0) std::memcpy(dst, src, count);
  return cudaSuccess;
}
