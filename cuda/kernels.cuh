// The CUDA multi-tensor engine: the same primitives as cpp/ (per-tensor sums in one read, per-tensor
// axpby update), over a table of tensors in device memory, in a constant number of launches.
//
//   fromax_reduce    grid-stride over fixed 16K-element chunks; one block reduces one chunk in a
//                    fixed order (thread-strided, then a shared-memory tree): deterministic, no atomics
//   fromax_finalize  one thread per tensor: adds its chunk partials in chunk order (f64), then a
//                    functor turns the sums into outputs (sums) or update coefficients (Fromage)
//   fromax_update    grid-stride over chunks: out = a_t * x + b_t * y
//
// Loads and stores are 16 bytes wide where both streams have the same element width and are
// 16-byte aligned, with a scalar tail.
#pragma once

#include <cstdint>
#include <cstring>

#include "dtypes.cuh"

namespace fromax::cuda {

inline constexpr int64_t kChunk = int64_t{1} << 14;
inline constexpr int kThreads = 256;

struct Entry {
  const void* x;
  const void* y;
  void* out;
  int64_t length;
  int32_t tx, ty;
  int32_t first_chunk, num_chunks;
};

struct ChunkRef {
  int32_t entry;
  int32_t index;  // chunk `index` of the entry covers [index * kChunk, min(length, (index + 1) * kChunk))
};

template <class T>
__device__ __forceinline__ bool Aligned16(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Per-thread partial sums over [begin, end) of one chunk, accumulated in Acc.
template <class Acc, bool kWithB, class TX, class TY>
__device__ void ThreadSums(const TX* x, const TY* y, int64_t begin, int64_t end, Acc* aa, Acc* bb, Acc* ab) {
  constexpr int kVec = 16 / sizeof(TX);
  int64_t i = begin;
  const bool vector = sizeof(TX) == sizeof(TY) && Aligned16(x + begin) && (!kWithB || Aligned16(y + begin));
  if (vector) {
    const int64_t num_vec = (end - begin) / kVec;
    for (int64_t v = threadIdx.x; v < num_vec; v += blockDim.x) {
      TX xv[kVec];
      const uint4 xraw = *reinterpret_cast<const uint4*>(x + begin + v * kVec);
      memcpy(xv, &xraw, sizeof xraw);
      TY yv[kVec];
      if constexpr (kWithB) {
        const uint4 yraw = *reinterpret_cast<const uint4*>(y + begin + v * kVec);
        memcpy(yv, &yraw, sizeof yraw);
      }
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const Acc a = Load<Acc>(xv[j]);
        *aa += a * a;
        if constexpr (kWithB) {
          const Acc b = Load<Acc>(yv[j]);
          *bb += b * b;
          *ab += a * b;
        }
      }
    }
    i = begin + num_vec * kVec;
  }
  for (int64_t k = i + threadIdx.x; k < end; k += blockDim.x) {
    const Acc a = Load<Acc>(x[k]);
    *aa += a * a;
    if constexpr (kWithB) {
      const Acc b = Load<Acc>(y[k]);
      *bb += b * b;
      *ab += a * b;
    }
  }
}

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

template <class Acc, bool kWithB>
__global__ void __launch_bounds__(kThreads)
    fromax_reduce(const Entry* entries, const ChunkRef* chunks, int64_t num_chunks, double* partials) {
  __shared__ double shared[kThreads];
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const Entry e = entries[ref.entry];
    const int64_t begin = int64_t(ref.index) * kChunk;
    const int64_t end = begin + kChunk < e.length ? begin + kChunk : e.length;
    Acc aa = 0, bb = 0, ab = 0;
    VisitType(e.tx, [&](auto tx) {
      VisitType(e.ty, [&](auto ty) {
        using TX = typename decltype(tx)::type;
        using TY = typename decltype(ty)::type;
        ThreadSums<Acc, kWithB>(static_cast<const TX*>(e.x), static_cast<const TY*>(e.y), begin, end, &aa, &bb, &ab);
      });
    });
    const double s0 = BlockSum(double(aa), shared);
    double s1 = 0, s2 = 0;
    if constexpr (kWithB) {
      s1 = BlockSum(double(bb), shared);
      s2 = BlockSum(double(ab), shared);
    }
    if (threadIdx.x == 0) {
      partials[3 * c] = s0;
      partials[3 * c + 1] = s1;
      partials[3 * c + 2] = s2;
    }
  }
}

// finish(t, aa, bb, ab) is called once per tensor with its sums in the accumulator type.
template <class Acc, class Finish>
__global__ void fromax_finalize(const Entry* entries, int64_t num_entries, const double* partials, Finish finish) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries) return;
  const Entry e = entries[t];
  double s0 = 0, s1 = 0, s2 = 0;
  for (int32_t c = e.first_chunk; c < e.first_chunk + e.num_chunks; ++c) {
    s0 += partials[3 * c];
    s1 += partials[3 * c + 1];
    s2 += partials[3 * c + 2];
  }
  finish(t, Acc(s0), Acc(s1), Acc(s2));
}

template <class Acc, class TX, class TY>
__device__ void ThreadAxpby(TX* out, const TX* x, const TY* y, Acc ca, Acc cb, int64_t begin, int64_t end) {
  constexpr int kVec = 16 / sizeof(TX);
  int64_t i = begin;
  if (sizeof(TX) == sizeof(TY) && Aligned16(x + begin) && Aligned16(y + begin) && Aligned16(out + begin)) {
    const int64_t num_vec = (end - begin) / kVec;
    for (int64_t v = threadIdx.x; v < num_vec; v += blockDim.x) {
      TX xv[kVec], ov[kVec];
      TY yv[kVec];
      const uint4 xraw = *reinterpret_cast<const uint4*>(x + begin + v * kVec);
      const uint4 yraw = *reinterpret_cast<const uint4*>(y + begin + v * kVec);
      memcpy(xv, &xraw, sizeof xraw);
      memcpy(yv, &yraw, sizeof yraw);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ov[j] = Store<TX>(ca * Load<Acc>(xv[j]) + cb * Load<Acc>(yv[j]));
      uint4 oraw;
      memcpy(&oraw, ov, sizeof oraw);
      *reinterpret_cast<uint4*>(out + begin + v * kVec) = oraw;
    }
    i = begin + num_vec * kVec;
  }
  for (int64_t k = i + threadIdx.x; k < end; k += blockDim.x) out[k] = Store<TX>(ca * Load<Acc>(x[k]) + cb * Load<Acc>(y[k]));
}

template <class Acc>
__global__ void __launch_bounds__(kThreads)
    fromax_update(const Entry* entries, const ChunkRef* chunks, int64_t num_chunks, const Acc* coeffs) {
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const Entry e = entries[ref.entry];
    const int64_t begin = int64_t(ref.index) * kChunk;
    const int64_t end = begin + kChunk < e.length ? begin + kChunk : e.length;
    const Acc ca = coeffs[2 * ref.entry], cb = coeffs[2 * ref.entry + 1];
    VisitType(e.tx, [&](auto tx) {
      VisitType(e.ty, [&](auto ty) {
        using TX = typename decltype(tx)::type;
        using TY = typename decltype(ty)::type;
        ThreadAxpby<Acc>(static_cast<TX*>(e.out), static_cast<const TX*>(e.x), static_cast<const TY*>(e.y), ca, cb,
                         begin, end);
      });
    });
  }
}

}  // namespace fromax::cuda
