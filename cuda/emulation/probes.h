// Probe kernels for the emulation's own tests (tests/test_cuda_emulation.py): each checks one
// property of the execution model that fromax's kernels rely on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fromax::emulation {

// Runs probe `name` on a grid of `blocks` x `threads`; returns the launch's cudaGetLastError code
// and what the probe wrote:
//   "indices"           per thread (blockIdx.x, threadIdx.x, blockDim.x, gridDim.x)
//   "neighbour"         per thread, the value its right neighbour wrote to shared memory before a
//                       __syncthreads() (blockIdx.x * 1000 + neighbour's threadIdx.x)
//   "shared_at_start"   per block, the bits of a shared word the previous block overwrote
//   "divergent_barrier" thread 0 returns while the others wait at __syncthreads() (must fail)
//   "shared_overflow"   declares 64 KiB of shared memory (must fail)
struct ProbeResult {
  int error;
  std::vector<int64_t> data;
};
ProbeResult RunProbe(const std::string& name, int64_t blocks, int64_t threads);

}  // namespace fromax::emulation
