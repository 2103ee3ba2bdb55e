// The CUDA elementwise engine: the functors of cpp/functors (the same __host__ __device__ code the
// CPU engine runs) over a table of k input and j output streams per tensor, in a constant number
// of launches whatever the number of tensors.
//
//   fromax_family_reduce    grid-stride over 16K-element chunks; one block sums one chunk's terms
//                           (thread-strided in Acc, then BlockSums' fixed-order tree in f64):
//                           deterministic, no atomics
//   fromax_family_finalize  one thread per tensor: its chunk partials added in chunk order (f64)
//   fromax_family_update    grid-stride over chunks: every element's results, written over (or
//                           beside) its streams; an element reads all its streams before writing
//   fromax_family_fused     (per-tensor fused functors) one block per tensor of one chunk: its
//                           sums, its Finish (thread 0, into shared memory) and its update, the
//                           tensor read twice by the same block while it is in L1/L2
//   fromax_family_finish    (fused, tensors of several chunks) one thread per tensor: its chunk
//                           partials added in chunk order, then Finish; such tensors take reduce,
//                           finish and update launches
// A tensor's sums have the same bits whichever kernel computes them: the same groups per thread,
// the same tree, and one chunk's total is its tensor's total.
#pragma once

#include <cfloat>
#include <cstdint>
#include <cstring>

#include "dtypes.cuh"
#include "functors/common.h"
#include "launch.cuh"
#include "upload.cuh"

namespace fromax::cuda {

// Fixed-order tree over the block's threads, for kSums values per thread at once (shared:
// kSums * kThreads doubles): one barrier per level for all the sums. total[r] is sum r of the
// block, in every thread.
template <int kSums>
__device__ __forceinline__ void BlockSums(const double* v, double* shared, double* total) {
#pragma unroll
  for (int r = 0; r < kSums; ++r) shared[r * kThreads + threadIdx.x] = v[r];
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) {
#pragma unroll
      for (int r = 0; r < kSums; ++r) shared[r * kThreads + threadIdx.x] += shared[r * kThreads + threadIdx.x + width];
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kSums; ++r) total[r] = shared[r * kThreads];
  __syncthreads();
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
// A chunk is read in groups of kGroup consecutive elements, group v to thread v % blockDim.x, for
// every storage type: the order in which a thread accumulates its sums depends on nothing but the
// tensor's length. A group is kGroup * sizeof(T) bytes, a multiple of 16 for every type: where the
// group is whole and the entry's pointers aligned (a chunk starts at a multiple of kGroup, so the
// group does too), each stream moves with 16-byte loads and stores; the chunk's short last group
// element by element.
//
// The storage type is dispatched out of the element loop: an entry whose streams share one type T
// (the common case: f32, bf16 or f16 parameters with state of the same type) once per chunk
// (Uniform<T>); an entry of mixed types (bf16 parameters with f32 moments) once per stream per
// group (Mixed), its groups read as above.
inline constexpr int kGroup = 8;

template <class Acc, class T>
__device__ __forceinline__ void LoadGroup(const void* base, int64_t i0, int count, bool vector, Acc* dst) {
  const T* p = static_cast<const T*>(base) + i0;
  if (vector && count == kGroup) {
    constexpr int kVectors = kGroup * sizeof(T) / 16;
    T v[kGroup];
#pragma unroll
    for (int w = 0; w < kVectors; ++w) {
      const uint4 raw = reinterpret_cast<const uint4*>(p)[w];
      memcpy(reinterpret_cast<char*>(v) + 16 * w, &raw, sizeof raw);
    }
#pragma unroll
    for (int l = 0; l < kGroup; ++l) dst[l] = Load<Acc>(v[l]);
  } else {  // unrolled with a guard, not a loop to count: dst stays in registers
#pragma unroll
    for (int l = 0; l < kGroup; ++l)
      if (l < count) dst[l] = Load<Acc>(p[l]);
  }
}

template <class Acc, class T>
__device__ __forceinline__ void StoreGroup(void* base, int64_t i0, int count, bool vector, const Acc* src) {
  T* p = static_cast<T*>(base) + i0;
  if (vector && count == kGroup) {
    constexpr int kVectors = kGroup * sizeof(T) / 16;
    T v[kGroup];
#pragma unroll
    for (int l = 0; l < kGroup; ++l) v[l] = Store<T>(src[l]);
#pragma unroll
    for (int w = 0; w < kVectors; ++w) {
      uint4 raw;
      memcpy(&raw, reinterpret_cast<const char*>(v) + 16 * w, sizeof raw);
      reinterpret_cast<uint4*>(p)[w] = raw;
    }
  } else {
#pragma unroll
    for (int l = 0; l < kGroup; ++l)
      if (l < count) p[l] = Store<T>(src[l]);
  }
}

// Every stream of the entry stored as T: the type was dispatched once, for the chunk.
template <class T>
struct Uniform {
  template <class Acc>
  static __device__ __forceinline__ void Read(const void* base, int32_t, int64_t i0, int count, bool vector, Acc* dst) {
    LoadGroup<Acc, T>(base, i0, count, vector, dst);
  }
  template <class Acc>
  static __device__ __forceinline__ void Write(void* base, int32_t, int64_t i0, int count, bool vector, const Acc* src) {
    StoreGroup<Acc, T>(base, i0, count, vector, src);
  }
};

// Streams of several types: each stream's type dispatched once per group.
struct Mixed {
  template <class Acc>
  static __device__ __forceinline__ void Read(const void* base, int32_t dtype, int64_t i0, int count, bool vector,
                                              Acc* dst) {
    VisitType(dtype, [&](auto tag) { LoadGroup<Acc, typename decltype(tag)::type>(base, i0, count, vector, dst); });
  }
  template <class Acc>
  static __device__ __forceinline__ void Write(void* base, int32_t dtype, int64_t i0, int count, bool vector,
                                               const Acc* src) {
    VisitType(dtype, [&](auto tag) { StoreGroup<Acc, typename decltype(tag)::type>(base, i0, count, vector, src); });
  }
};

// Calls fn(Uniform<T>{}) if the entry's streams share a storage type T of this accumulator group
// (f64 for Acc = double; f32, bf16, f16 for float), fn(Mixed{}) otherwise.
template <class Acc, class Fn>
__device__ __forceinline__ void WithLayout(int32_t uniform, const Fn& fn) {
  using xla::ffi::DataType;
  if constexpr (sizeof(Acc) == sizeof(double)) {
    if (uniform == int32_t(DataType::F64)) return fn(Uniform<double>{});
  } else {
    if (uniform == int32_t(DataType::F32)) return fn(Uniform<float>{});
    if (uniform == int32_t(DataType::BF16)) return fn(Uniform<__nv_bfloat16>{});
    if (uniform == int32_t(DataType::F16)) return fn(Uniform<__half>{});
  }
  fn(Mixed{});
}

// Calls fn(i0, count) for each group of [begin, end) this thread owns (count < kGroup only for the
// range's last group).
template <class Fn>
__device__ __forceinline__ void ForEachGroup(int64_t begin, int64_t end, const Fn& fn) {
  const int64_t groups = (end - begin + kGroup - 1) / kGroup;
  for (int64_t v = threadIdx.x; v < groups; v += blockDim.x) {
    const int64_t i0 = begin + v * kGroup;
    fn(i0, end - i0 < kGroup ? int(end - i0) : kGroup);
  }
}

// ---- one chunk's work, shared by the kernels ----------------------------------------------------
// A norm's element with its denormals counted as 0, as the CPU engine (XLA's CPU threads flush
// denormals) and the reference (fromax._l2: a tensor below the smallest normal has norm 0) count
// them; the GPU keeps denormals, and their f64 squares would turn a zero-norm step into a tiny one.
__device__ __forceinline__ float DenormalsAsZero(float x) { return x < FLT_MIN && x > -FLT_MIN ? 0.0f : x; }
__device__ __forceinline__ double DenormalsAsZero(double x) { return x < DBL_MIN && x > -DBL_MIN ? 0.0 : x; }

// F::Reduce's sums over [begin, end) of entry e (row: its coefficients), in total[] of every thread.
// A norm output (F::IsNorm(r)) is a value whose square accumulates in f64 from the start (no
// underflow or overflow for f32 data); its root is taken once the tensor's partials are added (SumsOut).
template <class F, class Acc, class Entry>
__device__ __forceinline__ void ChunkSums(const Entry& e, int64_t begin, int64_t end, const Acc* row, double* shared,
                                          double* total) {
  Acc acc[F::kSums];
  double wide[F::kSums];
#pragma unroll
  for (int r = 0; r < F::kSums; ++r) acc[r] = Acc(0), wide[r] = 0.0;
  WithLayout<Acc>(e.uniform, [&](auto layout) {
    using L = decltype(layout);
    ForEachGroup(begin, end, [&](int64_t i0, int count) {
      Acc xs[F::kIn][kGroup];
#pragma unroll
      for (int k = 0; k < F::kIn; ++k) L::Read(e.in[k], e.in_type[k], i0, count, e.aligned, xs[k]);
#pragma unroll
      for (int l = 0; l < kGroup; ++l) {
        if (l < count) {  // a short group's missing elements are not summed
          Acc x[F::kIn], s[F::kSums];
#pragma unroll
          for (int k = 0; k < F::kIn; ++k) x[k] = xs[k][l];
          F::Reduce(row, x, s);
#pragma unroll
          for (int r = 0; r < F::kSums; ++r) {
            if (F::IsNorm(r)) {
              const double v = DenormalsAsZero(s[r]);
              wide[r] += v * v;
            } else {
              acc[r] += s[r];
            }
          }
        }
      }
    });
  });
  double partial[F::kSums];
#pragma unroll
  for (int r = 0; r < F::kSums; ++r) partial[r] = F::IsNorm(r) ? wide[r] : double(acc[r]);
  BlockSums<F::kSums>(partial, shared, total);
}

// A tensor's outputs from its f64 totals: a norm output's root, every output rounded to Acc once.
template <class F, class Acc>
__device__ __forceinline__ void SumsOut(const double* total, Acc* sums) {
#pragma unroll
  for (int r = 0; r < F::kSums; ++r) sums[r] = Acc(F::IsNorm(r) ? sqrt(total[r]) : total[r]);
}

// F::Update's results over [begin, end) of entry e. Result 0 is the increment (kDelta) or, for the
// fused step, the parameter p + increment. Every stream of a group is read before any result is
// written: a result may be written over its own stream (aliased), and no other thread touches
// these elements.
template <class F, class Acc, bool kDelta, class Entry>
__device__ __forceinline__ void ChunkUpdate(const Entry& e, int64_t begin, int64_t end, const Acc* row) {
  WithLayout<Acc>(e.uniform, [&](auto layout) {
    using L = decltype(layout);
    ForEachGroup(begin, end, [&](int64_t i0, int count) {
      Acc xs[F::kIn][kGroup], ys[F::kOut][kGroup];
#pragma unroll
      for (int k = 0; k < F::kIn; ++k) L::Read(e.in[k], e.in_type[k], i0, count, e.aligned, xs[k]);
#pragma unroll
      for (int l = 0; l < kGroup; ++l) {
        if (l < count) {  // a short group's missing elements are neither read nor written
          Acc x[F::kIn], y[F::kOut];
#pragma unroll
          for (int k = 0; k < F::kIn; ++k) x[k] = xs[k][l];
          F::Update(row, x, y);
          if constexpr (!kDelta) y[0] += x[F::kParam];
#pragma unroll
          for (int j = 0; j < F::kOut; ++j) ys[j][l] = y[j];
        }
      }
#pragma unroll
      for (int j = 0; j < F::kOut; ++j) L::Write(e.out[j], e.out_type[j], i0, count, e.aligned, ys[j]);
    });
  });
}

// The element range [begin, end) of chunk `ref`.
template <class Entry>
__device__ __forceinline__ void ChunkRange(const Entry& e, const ChunkRef& ref, int64_t* begin, int64_t* end) {
  *begin = int64_t(ref.index) * kChunk;
  *end = *begin + kChunk < e.length ? *begin + kChunk : e.length;
}

// ---- kernels ------------------------------------------------------------------------------------
// Entry: the call's table (a fused call's has its update's streams; F reads the first F::kIn).
// coeffs: F::kCoeffs per entry, or (a fused call) the leading columns of a wider row of `stride`.
// Chunks [first, num_chunks) of the list; partials: kSums doubles per chunk of the whole list.
template <class F, class Acc, class Entry>
__global__ void __launch_bounds__(kThreads)
    fromax_family_reduce(const Entry* entries, const ChunkRef* chunks, int64_t first, int64_t num_chunks,
                         const Acc* coeffs, int stride, double* partials) {
  FROMAX_SHARED(double, shared, kThreads * F::kSums);
  for (int64_t c = first + blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const Entry& e = entries[ref.entry];
    int64_t begin, end;
    ChunkRange(e, ref, &begin, &end);
    double total[F::kSums];
    ChunkSums<F, Acc>(e, begin, end, coeffs + int64_t(ref.entry) * stride, shared, total);
    if (threadIdx.x == 0) {
#pragma unroll
      for (int r = 0; r < F::kSums; ++r) partials[c * F::kSums + r] = total[r];
    }
  }
}

// Tensor t's F::kSums sums: its chunk partials added in chunk order (f64). No chunk (no element): 0.
template <class F, class Entry, class Acc>
__device__ __forceinline__ void TensorSums(const Entry& e, const double* partials, Acc* sums) {
  constexpr int kSums = F::kSums;
  double total[kSums];
#pragma unroll
  for (int r = 0; r < kSums; ++r) total[r] = 0;
  for (int32_t c = e.first_chunk; c < e.first_chunk + e.num_chunks; ++c) {
#pragma unroll
    for (int r = 0; r < kSums; ++r) total[r] += partials[int64_t(c) * kSums + r];
  }
  SumsOut<F>(total, sums);
}

// sums: (entries, kSums) in Acc.
template <class F, class Acc, class Entry>
__global__ void fromax_family_finalize(const Entry* entries, int64_t num_entries, const double* partials, Acc* sums) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries) return;
  TensorSums<F>(entries[t], partials, sums + t * F::kSums);
}

// Chunks [first, num_chunks): F's results.
template <class F, class Acc, bool kDelta, class Entry>
__global__ void __launch_bounds__(kThreads)
    fromax_family_update(const Entry* entries, const ChunkRef* chunks, int64_t first, int64_t num_chunks,
                         const Acc* coeffs) {
  for (int64_t c = first + blockIdx.x; c < num_chunks; c += gridDim.x) {
    const ChunkRef ref = chunks[c];
    const Entry& e = entries[ref.entry];
    int64_t begin, end;
    ChunkRange(e, ref, &begin, &end);
    ChunkUpdate<F, Acc, kDelta>(e, begin, end, coeffs + int64_t(ref.entry) * F::kCoeffs);
  }
}

// A per-tensor fused functor F over the tensors of one chunk (chunks [0, num_chunks) of the list,
// one per tensor): a block sums its tensor (written to sums: (entries, kSums)), thread 0 turns the
// sums into the update's row in shared memory, and the block updates the tensor.
template <class F, class Acc, bool kDelta, class Entry>
__global__ void __launch_bounds__(kThreads)
    fromax_family_fused(const Entry* entries, const ChunkRef* chunks, int64_t num_chunks, const Acc* coeffs,
                        Acc* sums) {
  using R = typename F::Reduce;
  using U = typename F::Update;
  FROMAX_SHARED(double, shared, kThreads * R::kSums);
  FROMAX_SHARED(Acc, row, U::kCoeffs);
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const int64_t t = chunks[c].entry;
    const Entry& e = entries[t];
    const Acc* params = coeffs + t * F::kCoeffs;
    double total[R::kSums];
    ChunkSums<R, Acc>(e, 0, e.length, params, shared, total);
    if (threadIdx.x == 0) {
      Acc* s = sums + t * R::kSums;
      SumsOut<R>(total, s);
      F::Finish(params, s, row);
    }
    __syncthreads();
    ChunkUpdate<U, Acc, kDelta>(e, 0, e.length, row);
    __syncthreads();  // the next tensor's Finish overwrites row
  }
}

// A fused functor F over the tensors of several chunks or none (fromax_family_fused took the
// others): each tensor's sums of F::Reduce (written to sums: (entries, kSums)), turned by F::Finish
// into its row of F::Update's coefficients (rows: (entries, F::Update::kCoeffs)).
template <class F, class Acc, class Entry>
__global__ void fromax_family_finish(const Entry* entries, int64_t num_entries, const double* partials,
                                     const Acc* coeffs, Acc* sums, Acc* rows) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= num_entries || entries[t].num_chunks == 1) return;
  Acc* s = sums + t * F::Reduce::kSums;
  TensorSums<typename F::Reduce>(entries[t], partials, s);
  F::Finish(coeffs + t * F::kCoeffs, s, rows + t * F::Update::kCoeffs);
}

}  // namespace fromax::cuda
