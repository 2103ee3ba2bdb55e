// The CUDA elementwise engine: the functors of cpp/functors (the same __host__ __device__ code the
// CPU engine runs) over a table of k input and j output streams per tensor, in a constant number
// of launches whatever the number of tensors.
//
//   fromax_family_reduce    grid-stride over 16K-element chunks; one block sums one chunk's terms
//                           (thread-strided in Acc, then BlockSum's fixed-order tree in f64):
//                           deterministic, no atomics
//   fromax_family_finalize  one thread per tensor: its chunk partials added in chunk order (f64)
//   fromax_family_update    grid-stride over chunks: every element's results, written over (or
//                           beside) its streams; an element reads all its streams before writing
#pragma once

#include <cstdint>

#include "dtypes.cuh"
#include "kernels.cuh"

namespace fromax::cuda {

// One tensor (or one segment of a vmapped tensor) of an elementwise call.
template <int kIn, int kOut>
struct StreamEntry {
  const void* in[kIn];
  void* out[kOut > 0 ? kOut : 1];
  int32_t in_type[kIn];
  int32_t out_type[kOut > 0 ? kOut : 1];
  int64_t length;
  int32_t first_chunk, num_chunks;
};

template <class Acc>
__device__ __forceinline__ Acc LoadElement(const void* base, int32_t dtype, int64_t i) {
  Acc v;
  VisitType(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    v = Load<Acc>(static_cast<const T*>(base)[i]);
  });
  return v;
}

template <class Acc>
__device__ __forceinline__ void StoreElement(void* base, int32_t dtype, int64_t i, Acc v) {
  VisitType(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    static_cast<T*>(base)[i] = Store<T>(v);
  });
}

template <class F, class Acc>
__global__ void __launch_bounds__(kThreads)
    fromax_family_reduce(const StreamEntry<F::kIn, 0>* entries, const ChunkRef* chunks, int64_t num_chunks,
                         const Acc* coeffs, double* partials) {
  __shared__ double shared[kThreads];
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const StreamEntry<F::kIn, 0>& e = entries[ref.entry];
    const Acc* row = coeffs + int64_t(ref.entry) * F::kCoeffs;
    const int64_t begin = int64_t(ref.index) * kChunk;
    const int64_t end = begin + kChunk < e.length ? begin + kChunk : e.length;
    Acc acc[F::kSums];
#pragma unroll
    for (int r = 0; r < F::kSums; ++r) acc[r] = Acc(0);
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      Acc x[F::kIn], s[F::kSums];
#pragma unroll
      for (int k = 0; k < F::kIn; ++k) x[k] = LoadElement<Acc>(e.in[k], e.in_type[k], i);
      F::Reduce(row, x, s);
#pragma unroll
      for (int r = 0; r < F::kSums; ++r) acc[r] += s[r];
    }
#pragma unroll
    for (int r = 0; r < F::kSums; ++r) {
      const double total = BlockSum(double(acc[r]), shared);
      if (threadIdx.x == 0) partials[c * F::kSums + r] = total;
    }
  }
}

// sums: (entries, kSums) in Acc. A tensor with no element (no chunk) gets zero sums.
template <class F, class Acc>
__global__ void fromax_family_finalize(const StreamEntry<F::kIn, 0>* entries, int64_t num_entries,
                                       const double* partials, Acc* sums) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries) return;
  double total[F::kSums];
#pragma unroll
  for (int r = 0; r < F::kSums; ++r) total[r] = 0;
  for (int32_t c = entries[t].first_chunk; c < entries[t].first_chunk + entries[t].num_chunks; ++c) {
#pragma unroll
    for (int r = 0; r < F::kSums; ++r) total[r] += partials[int64_t(c) * F::kSums + r];
  }
#pragma unroll
  for (int r = 0; r < F::kSums; ++r) sums[t * F::kSums + r] = Acc(total[r]);
}

// Result 0 is the increment (kDelta) or, for the fused step, the parameter p + increment.
template <class F, class Acc, bool kDelta>
__global__ void __launch_bounds__(kThreads)
    fromax_family_update(const StreamEntry<F::kIn, F::kOut>* entries, const ChunkRef* chunks, int64_t num_chunks,
                         const Acc* coeffs) {
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const StreamEntry<F::kIn, F::kOut>& e = entries[ref.entry];
    const Acc* row = coeffs + int64_t(ref.entry) * F::kCoeffs;
    const int64_t begin = int64_t(ref.index) * kChunk;
    const int64_t end = begin + kChunk < e.length ? begin + kChunk : e.length;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      Acc x[F::kIn], y[F::kOut];
#pragma unroll
      for (int k = 0; k < F::kIn; ++k) x[k] = LoadElement<Acc>(e.in[k], e.in_type[k], i);
      F::Update(row, x, y);
      if constexpr (!kDelta) y[0] += x[F::kParam];
#pragma unroll
      for (int j = 0; j < F::kOut; ++j) StoreElement<Acc>(e.out[j], e.out_type[j], i, y[j]);
    }
  }
}

}  // namespace fromax::cuda
