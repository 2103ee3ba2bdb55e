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
//   fromax_family_finish    (per-tensor fused functors) one thread per tensor: its chunk partials
//                           added in chunk order, then the functor's Finish turns them into the
//                           tensor's update row; a fused call is reduce, finish, update launches
#pragma once

#include <cstdint>
#include <cstring>

#include "dtypes.cuh"
#include "functors/common.h"
#include "upload.cuh"

namespace fromax::cuda {

// Fixed-order tree over the block's threads; the result is in shared[0] for every thread.
__device__ __forceinline__ double BlockSum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) shared[threadIdx.x] += shared[threadIdx.x + width];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

// One tensor (or one segment of a vmapped tensor) of an elementwise call.
template <int kIn, int kOut>
struct StreamEntry {
  const void* in[kIn];
  void* out[kOut > 0 ? kOut : 1];
  int32_t in_type[kIn];
  int32_t out_type[kOut > 0 ? kOut : 1];
  int64_t length;
  int32_t first_chunk, num_chunks;
  int32_t uniform;  // the XLA dtype every stream of the entry is stored in, or -1 (mixed)
  int32_t aligned;  // every stream's pointer is 16-byte aligned
};

// ---- reading a chunk --------------------------------------------------------------------------
// An entry whose streams share one storage type T (the common case: f32, bf16 or f16 parameters
// with state of the same type) is read in groups of kWidth<T> = 16 bytes of consecutive elements
// per thread (group v of a chunk to thread v % blockDim.x), with one 16-byte load or store per
// stream where the group is whole and the entry aligned, element by element otherwise: the dtype
// dispatch happens once per chunk. The groups, and so the order in which a thread accumulates its
// sums, depend only on T, never on the alignment. Other entries (streams of mixed types) are read
// one element per thread, converting each stream by its type.
template <class T>
inline constexpr int kWidth = int(16 / sizeof(T));

template <class Acc, class T>
__device__ __forceinline__ void LoadGroup(const void* base, int64_t i0, int count, bool vector, Acc* dst) {
  const T* p = static_cast<const T*>(base) + i0;
  if (vector && count == kWidth<T>) {
    T v[kWidth<T>];
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    memcpy(v, &raw, sizeof raw);
#pragma unroll
    for (int l = 0; l < kWidth<T>; ++l) dst[l] = Load<Acc>(v[l]);
  } else {
    for (int l = 0; l < count; ++l) dst[l] = Load<Acc>(p[l]);
  }
}

template <class Acc, class T>
__device__ __forceinline__ void StoreGroup(void* base, int64_t i0, int count, bool vector, const Acc* src) {
  T* p = static_cast<T*>(base) + i0;
  if (vector && count == kWidth<T>) {
    T v[kWidth<T>];
#pragma unroll
    for (int l = 0; l < kWidth<T>; ++l) v[l] = Store<T>(src[l]);
    uint4 raw;
    memcpy(&raw, v, sizeof raw);
    *reinterpret_cast<uint4*>(p) = raw;
  } else {
    for (int l = 0; l < count; ++l) p[l] = Store<T>(src[l]);
  }
}

// Calls fn(i0, count) for each group of [begin, end) this thread owns (count < kWidth<T> only for
// the chunk's last group); LoadStreams loads the first kIn streams of group i0 into xs.
template <class T, class Fn>
__device__ __forceinline__ void ForEachGroup(int64_t begin, int64_t end, const Fn& fn) {
  constexpr int kW = kWidth<T>;
  const int64_t groups = (end - begin + kW - 1) / kW;
  for (int64_t v = threadIdx.x; v < groups; v += blockDim.x) {
    const int64_t i0 = begin + v * kW;
    fn(i0, end - i0 < kW ? int(end - i0) : kW);
  }
}

template <int kIn, class Acc, class T, class Entry>
__device__ __forceinline__ void LoadStreams(const Entry& e, int64_t i0, int count, Acc (*xs)[kWidth<T>]) {
#pragma unroll
  for (int k = 0; k < kIn; ++k) LoadGroup<Acc, T>(e.in[k], i0, count, e.aligned, xs[k]);
}

// Calls fn(Tag<T>) if the entry's streams share a storage type T of this accumulator group (f64
// for Acc = double; f32, bf16, f16 for float) and returns true; false for mixed types.
template <class Acc, class Fn>
__device__ __forceinline__ bool VisitUniform(int32_t uniform, const Fn& fn) {
  using xla::ffi::DataType;
  if constexpr (sizeof(Acc) == sizeof(double)) {
    if (uniform == int32_t(DataType::F64)) return fn(Tag<double>{}), true;
  } else {
    if (uniform == int32_t(DataType::F32)) return fn(Tag<float>{}), true;
    if (uniform == int32_t(DataType::BF16)) return fn(Tag<__nv_bfloat16>{}), true;
    if (uniform == int32_t(DataType::F16)) return fn(Tag<__half>{}), true;
  }
  return false;
}

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

// Entry: the call's table (a fused call's has its update's streams; F reads the first F::kIn).
// coeffs: F::kCoeffs per entry, or (a fused call) the leading columns of a wider row of `stride`.
template <class F, class Acc, class Entry>
__global__ void __launch_bounds__(kThreads)
    fromax_family_reduce(const Entry* entries, const ChunkRef* chunks, int64_t num_chunks, const Acc* coeffs,
                         int stride, double* partials) {
  __shared__ double shared[kThreads];
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const Entry& e = entries[ref.entry];
    const Acc* row = coeffs + int64_t(ref.entry) * stride;
    const int64_t begin = int64_t(ref.index) * kChunk;
    const int64_t end = begin + kChunk < e.length ? begin + kChunk : e.length;
    Acc acc[F::kSums];
#pragma unroll
    for (int r = 0; r < F::kSums; ++r) acc[r] = Acc(0);
    const bool uniform = VisitUniform<Acc>(e.uniform, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ForEachGroup<T>(begin, end, [&](int64_t i0, int count) {
        Acc xs[F::kIn][kWidth<T>];
        LoadStreams<F::kIn, Acc, T>(e, i0, count, xs);
#pragma unroll
        for (int l = 0; l < kWidth<T>; ++l) {
          if (l < count) {  // a short group's missing elements are not summed
            Acc x[F::kIn], s[F::kSums];
#pragma unroll
            for (int k = 0; k < F::kIn; ++k) x[k] = xs[k][l];
            F::Reduce(row, x, s);
#pragma unroll
            for (int r = 0; r < F::kSums; ++r) acc[r] += s[r];
          }
        }
      });
    });
    if (!uniform) {
      for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        Acc x[F::kIn], s[F::kSums];
#pragma unroll
        for (int k = 0; k < F::kIn; ++k) x[k] = LoadElement<Acc>(e.in[k], e.in_type[k], i);
        F::Reduce(row, x, s);
#pragma unroll
        for (int r = 0; r < F::kSums; ++r) acc[r] += s[r];
      }
    }
#pragma unroll
    for (int r = 0; r < F::kSums; ++r) {
      const double total = BlockSum(double(acc[r]), shared);
      if (threadIdx.x == 0) partials[c * F::kSums + r] = total;
    }
  }
}

// Tensor t's kSums sums: its chunk partials added in chunk order (f64). No chunk (no element): 0.
template <int kSums, class Entry, class Acc>
__device__ __forceinline__ void TensorSums(const Entry& e, const double* partials, Acc* sums) {
  double total[kSums];
#pragma unroll
  for (int r = 0; r < kSums; ++r) total[r] = 0;
  for (int32_t c = e.first_chunk; c < e.first_chunk + e.num_chunks; ++c) {
#pragma unroll
    for (int r = 0; r < kSums; ++r) total[r] += partials[int64_t(c) * kSums + r];
  }
#pragma unroll
  for (int r = 0; r < kSums; ++r) sums[r] = Acc(total[r]);
}

// sums: (entries, kSums) in Acc.
template <class F, class Acc, class Entry>
__global__ void fromax_family_finalize(const Entry* entries, int64_t num_entries, const double* partials, Acc* sums) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries) return;
  TensorSums<F::kSums>(entries[t], partials, sums + t * F::kSums);
}

// A fused functor F: each tensor's sums of F::Reduce (written to sums: (entries, kSums)), turned by
// F::Finish into its row of F::Update's coefficients (rows: (entries, F::Update::kCoeffs)).
template <class F, class Acc, class Entry>
__global__ void fromax_family_finish(const Entry* entries, int64_t num_entries, const double* partials,
                                     const Acc* coeffs, Acc* sums, Acc* rows) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries) return;
  Acc* s = sums + t * F::Reduce::kSums;
  TensorSums<F::Reduce::kSums>(entries[t], partials, s);
  F::Finish(coeffs + t * F::kCoeffs, s, rows + t * F::Update::kCoeffs);
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
    // Every stream of a group (or element) is read before any result is written: a result may be
    // written over its own stream (aliased), and no other thread touches these elements.
    const bool uniform = VisitUniform<Acc>(e.uniform, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ForEachGroup<T>(begin, end, [&](int64_t i0, int count) {
        Acc xs[F::kIn][kWidth<T>], ys[F::kOut][kWidth<T>];
        LoadStreams<F::kIn, Acc, T>(e, i0, count, xs);
#pragma unroll
        for (int l = 0; l < kWidth<T>; ++l) {
          if (l < count) {  // a short group's missing elements are neither read nor written
            Acc x[F::kIn], y[F::kOut];
#pragma unroll
            for (int k = 0; k < F::kIn; ++k) x[k] = xs[k][l];
            F::Update(row, x, y);
            if constexpr (!kDelta && !functors::IsAbsolute<F>::value) y[0] += x[F::kParam];
#pragma unroll
            for (int j = 0; j < F::kOut; ++j) ys[j][l] = y[j];
          }
        }
#pragma unroll
        for (int j = 0; j < F::kOut; ++j) StoreGroup<Acc, T>(e.out[j], i0, count, e.aligned, ys[j]);
      });
    });
    if (!uniform) {
      for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        Acc x[F::kIn], y[F::kOut];
#pragma unroll
        for (int k = 0; k < F::kIn; ++k) x[k] = LoadElement<Acc>(e.in[k], e.in_type[k], i);
        F::Update(row, x, y);
        if constexpr (!kDelta && !functors::IsAbsolute<F>::value) y[0] += x[F::kParam];
#pragma unroll
        for (int j = 0; j < F::kOut; ++j) StoreElement<Acc>(e.out[j], e.out_type[j], i, y[j]);
      }
    }
  }
}

}  // namespace fromax::cuda
