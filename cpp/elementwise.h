// The elementwise engine: one functor per algorithm phase, run over a StreamTable by RunEngine.
//
// A reduce functor F (F::kIn streams in, F::kSums per-tensor sums out) supplies
//     Reduce(const Acc* c, const Acc* x, Acc* s)        s[r] = this element's term of sum r
// an update functor F (F::kIn streams in, F::kOut results) supplies
//     Update(const Acc* c, const Acc* x, Acc* y)        y[j] = result j of this element
// where c is the tensor's row of F::kCoeffs coefficients (hyperparameters and per-tensor scalars,
// computed in JAX, so nothing here is ever recompiled) and x holds stream k's element in x[k]. Result 0
// of an update is the parameter's increment; the fused step (kDelta == false) stores p + y[0]
// instead, with p the stream F::kParam.
//
// Elements are processed in blocks of kLoad: each stream is converted to the accumulator type into
// a small buffer (one dtype dispatch per stream per block), the functor runs on the buffers (a
// plain loop the compiler vectorises), and results are rounded back. A result may alias a stream:
// a block is read whole before it is written.
#pragma once

#include <cstdint>
#include <cstring>

#include "dtypes.h"
#include "engine.h"
#include "streams.h"

namespace fromax {

inline constexpr int64_t kLoad = 256;
inline constexpr int kSumLanes = 8;

// Per-tensor partial sums of a reduce functor, combined across chunks in chunk order.
template <int R>
struct SumRow {
  double v[R > 0 ? R : 1] = {};
  SumRow& operator+=(const SumRow& o) {
    for (int r = 0; r < R; ++r) v[r] += o.v[r];
    return *this;
  }
};

template <class Acc, class T>
inline void LoadAs(const char* base, int64_t begin, int64_t count, Acc* dst) {
  const T* src = reinterpret_cast<const T*>(base) + begin;
  for (int64_t i = 0; i < count; ++i) dst[i] = Load<Acc>(src[i]);
}

template <class Acc>
inline void LoadBlock(const char* base, ffi::DataType d, int64_t begin, int64_t count, Acc* dst) {
  switch (d) {
    case ffi::DataType::F32: return LoadAs<Acc, float>(base, begin, count, dst);
    case ffi::DataType::F64: return LoadAs<Acc, double>(base, begin, count, dst);
    case ffi::DataType::BF16: return LoadAs<Acc, bf16>(base, begin, count, dst);
    default: return LoadAs<Acc, f16>(base, begin, count, dst);  // BuildStreams admits floats only
  }
}

template <class Acc, class T>
inline void StoreAs(char* base, int64_t begin, int64_t count, const Acc* src) {
  T* dst = reinterpret_cast<T*>(base) + begin;
  for (int64_t i = 0; i < count; ++i) dst[i] = Store<T>(src[i]);
}

template <class Acc>
inline void StoreBlock(char* base, ffi::DataType d, int64_t begin, int64_t count, const Acc* src) {
  switch (d) {
    case ffi::DataType::F32: return StoreAs<Acc, float>(base, begin, count, src);
    case ffi::DataType::F64: return StoreAs<Acc, double>(base, begin, count, src);
    case ffi::DataType::BF16: return StoreAs<Acc, bf16>(base, begin, count, src);
    default: return StoreAs<Acc, f16>(base, begin, count, src);
  }
}

// Sums of F's terms over [begin, end) of entry t: each element's terms go to lane i % kSumLanes in
// Acc within a block, blocks are added in f64, lanes combined pairwise: a fixed order.
template <class F, class Acc>
SumRow<F::kSums> ReduceRange(const StreamTable& tb, const Acc* c, int64_t t, int64_t begin, int64_t end) {
  constexpr int kIn = F::kIn, kSums = F::kSums;
  double total[kSums][kSumLanes] = {};
  alignas(64) Acc buf[kIn][kLoad];
  for (int64_t block = begin; block < end; block += kLoad) {
    const int64_t count = block + kLoad < end ? kLoad : end - block;
    for (int k = 0; k < kIn; ++k) LoadBlock<Acc>(tb.in[t * kIn + k], tb.in_type[t * kIn + k], block, count, buf[k]);
    Acc lane[kSums][kSumLanes] = {};
    int64_t i = 0;
    auto element = [&](int64_t e, int l) {
      Acc x[kIn], s[kSums];
#pragma GCC unroll 8
      for (int k = 0; k < kIn; ++k) x[k] = buf[k][e];
      F::Reduce(c, x, s);
#pragma GCC unroll 8
      for (int r = 0; r < kSums; ++r) lane[r][l] += s[r];
    };
    for (; i + kSumLanes <= count; i += kSumLanes) {
#pragma GCC unroll 8
      for (int l = 0; l < kSumLanes; ++l) element(i + l, l);
    }
    for (int l = 0; i < count; ++i, ++l) element(i, l);
    for (int r = 0; r < kSums; ++r)
      for (int l = 0; l < kSumLanes; ++l) total[r][l] += double(lane[r][l]);
  }
  SumRow<kSums> row;
  for (int r = 0; r < kSums; ++r) {
    for (int width = kSumLanes / 2; width > 0; width /= 2)
      for (int l = 0; l < width; ++l) total[r][l] += total[r][l + width];
    row.v[r] = total[r][0];
  }
  return row;
}

template <class F, class Acc, bool kDelta>
void UpdateRange(const StreamTable& tb, const Acc* c, int64_t t, int64_t begin, int64_t end) {
  constexpr int kIn = F::kIn, kOut = F::kOut;
  alignas(64) Acc buf[kIn][kLoad];
  alignas(64) Acc res[kOut][kLoad];
  for (int64_t block = begin; block < end; block += kLoad) {
    const int64_t count = block + kLoad < end ? kLoad : end - block;
    for (int k = 0; k < kIn; ++k) LoadBlock<Acc>(tb.in[t * kIn + k], tb.in_type[t * kIn + k], block, count, buf[k]);
    // The stream loops are unrolled so that the element loop is one straight body GCC vectorises.
#pragma GCC ivdep
    for (int64_t i = 0; i < count; ++i) {
      Acc x[kIn], y[kOut];
#pragma GCC unroll 8
      for (int k = 0; k < kIn; ++k) x[k] = buf[k][i];
      F::Update(c, x, y);
      if constexpr (!kDelta) y[0] += x[F::kParam];
#pragma GCC unroll 8
      for (int j = 0; j < kOut; ++j) res[j][i] = y[j];
    }
    for (int j = 0; j < kOut; ++j) StoreBlock<Acc>(tb.out[t * kOut + j], tb.out_type[t * kOut + j], block, count, res[j]);
  }
}

// coeffs: kCoeffs per entry. sums: kSums per entry (written).
template <class F, class Acc>
void RunReduce(ffi::ThreadPool* pool, const StreamTable& tb, const Acc* coeffs, Acc* sums) {
  RunEngine</*kReduce=*/true, /*kUpdate=*/false>(
      pool, tb.lengths,
      [&](int64_t t, int64_t b, int64_t e) { return ReduceRange<F, Acc>(tb, coeffs + t * F::kCoeffs, t, b, e); },
      [&](int64_t t, const SumRow<F::kSums>& s) {
        for (int r = 0; r < F::kSums; ++r) sums[t * F::kSums + r] = Acc(s.v[r]);
      },
      [](int64_t, int64_t, int64_t) {});
}

template <class F, class Acc, bool kDelta>
void RunUpdate(ffi::ThreadPool* pool, const StreamTable& tb, const Acc* coeffs) {
  RunEngine</*kReduce=*/false, /*kUpdate=*/true>(
      pool, tb.lengths, [](int64_t, int64_t, int64_t) { return SumRow<1>{}; }, [](int64_t, const SumRow<1>&) {},
      [&](int64_t t, int64_t b, int64_t e) { UpdateRange<F, Acc, kDelta>(tb, coeffs + t * F::kCoeffs, t, b, e); });
}

}  // namespace fromax
