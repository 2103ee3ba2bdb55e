// The emulated execution model (see cuda_runtime.h): grids run on a persistent pool of host threads.
//
// A launch runs its blocks one after another; every block runs on blockDim.x real threads of the
// pool (grown to the largest block seen, never shrunk), each with its own threadIdx, blockIdx,
// blockDim and gridDim. __syncthreads() is a barrier of the block's threads. Blocks run in order,
// so a grid's results do not depend on the host's scheduling unless the kernel races within a
// block, which the real threads then expose.
//
// Shared memory (FROMAX_SHARED in cuda/launch.cuh) is carved out of a per-block arena in
// declaration order, so every thread of a block gets the same addresses; the arena is filled with
// 0xFF bytes (a NaN in every float type) before each block, so a value read before it is written
// shows up, and it holds 48 KiB, the device's limit for static shared memory.
//
// Failures inside a grid (a thread leaving the kernel while others wait at a barrier, shared
// memory overflow) end the grid and set cudaErrorLaunchFailure, which the handler reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "cuda_runtime.h"

namespace fromax::emulation {

inline constexpr int64_t kMaxThreadsPerBlock = 1024;
inline constexpr int64_t kMaxGridX = 2147483647;
inline constexpr size_t kSharedBytesPerBlock = 48 * 1024;

// Runs body() on every thread of a 1-D grid of `blocks` blocks of `threads` threads and returns
// when the grid is done. An invalid configuration runs nothing and sets last_error
// (cudaErrorInvalidConfiguration), as a device launch does; a failure inside sets
// cudaErrorLaunchFailure. Launches from several host threads run one at a time.
void RunGrid(int64_t blocks, int64_t threads, const std::function<void()>& body);

// `bytes` of the current block's shared memory at `alignment`: the next declaration's.
void* SharedBytes(size_t bytes, size_t alignment);

// Launches since the process started (tests count them: a handler's launch count is part of its
// contract).
int64_t LaunchCount();

}  // namespace fromax::emulation
