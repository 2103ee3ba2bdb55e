// Probe kernels (probes.h), launched through cuda/launch.cuh's Launch as the engine's kernels are.
#include "probes.h"

#include "launch.cuh"

namespace fromax::emulation {
namespace {

__global__ void ProbeIndices(int64_t* out) {
  int64_t* mine = out + 4 * (int64_t(blockIdx.x) * blockDim.x + threadIdx.x);
  mine[0] = blockIdx.x;
  mine[1] = threadIdx.x;
  mine[2] = blockDim.x;
  mine[3] = gridDim.x;
}

__global__ void ProbeNeighbour(int64_t* out) {
  FROMAX_SHARED(int64_t, values, 1024);
  values[threadIdx.x] = int64_t(blockIdx.x) * 1000 + threadIdx.x;
  __syncthreads();
  out[int64_t(blockIdx.x) * blockDim.x + threadIdx.x] = values[(threadIdx.x + 1) % blockDim.x];
}

__global__ void ProbeSharedAtStart(int64_t* out) {
  FROMAX_SHARED(uint32_t, word, 1);
  if (threadIdx.x == 0) {
    out[blockIdx.x] = word[0];
    word[0] = 7;
  }
}

__global__ void ProbeDivergentBarrier(int64_t*) {
  if (threadIdx.x == 0) return;
  __syncthreads();
}

__global__ void ProbeSharedOverflow(int64_t* out) {
  FROMAX_SHARED(double, big, 8192);  // 64 KiB
  big[threadIdx.x] = 1;
  out[0] = 1;
}

}  // namespace

ProbeResult RunProbe(const std::string& name, int64_t blocks, int64_t threads) {
  const int64_t slots = blocks > 0 && threads > 0 ? blocks * threads * 4 : 1;
  std::vector<int64_t> out(size_t(slots), -1);
  void (*kernel)(int64_t*) = nullptr;
  if (name == "indices") kernel = ProbeIndices;
  if (name == "neighbour") kernel = ProbeNeighbour;
  if (name == "shared_at_start") kernel = ProbeSharedAtStart;
  if (name == "divergent_barrier") kernel = ProbeDivergentBarrier;
  if (name == "shared_overflow") kernel = ProbeSharedOverflow;
  if (kernel == nullptr) return {-1, {}};
  cudaGetLastError();  // clear what an earlier call left
  cuda::Launch(kernel, blocks, int(threads), cudaStream_t{nullptr}, out.data());
  const int error = int(cudaGetLastError());
  if (name == "indices") out.resize(size_t(blocks > 0 && threads > 0 ? blocks * threads * 4 : 0));
  else if (name == "neighbour") out.resize(size_t(blocks > 0 && threads > 0 ? blocks * threads : 0));
  else if (name == "shared_at_start") out.resize(size_t(blocks > 0 ? blocks : 0));
  else out.resize(1);
  return {error, out};
}

}  // namespace fromax::emulation
