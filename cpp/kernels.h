// The two streaming primitives every functor is built from, on one element range of one tensor:
//   SumRange:   (sum a^2, sum b^2, sum a*b) in one read of a (and b)
//   AxpbyRange: out = ca * x + cb * y       (out may alias x: elementwise, read before write)
#pragma once

#include <cstdint>

#include "dtypes.h"

namespace fromax {

struct Sums {
  double aa = 0, bb = 0, ab = 0;
  Sums& operator+=(const Sums& o) {
    aa += o.aa;
    bb += o.bb;
    ab += o.ab;
    return *this;
  }
};

// 16-byte SIMD vectors of the accumulator type (GCC/Clang vector extensions: SSE2 at the x86-64
// baseline, NEON on aarch64), so the accumulators stay in registers.
template <class Acc>
struct Simd;
template <>
struct Simd<float> {
  typedef float type __attribute__((vector_size(16)));
  static constexpr int kWidth = 4;
};
template <>
struct Simd<double> {
  typedef double type __attribute__((vector_size(16)));
  static constexpr int kWidth = 2;
};

template <class Acc, class T>
inline typename Simd<Acc>::type LoadSimd(const T* p) {
  constexpr int kWidth = Simd<Acc>::kWidth;
  Acc lanes[kWidth];
  for (int j = 0; j < kWidth; ++j) lanes[j] = Load<Acc>(p[j]);  // a plain vector load for Acc == T
  typename Simd<Acc>::type v;
  std::memcpy(&v, lanes, sizeof v);
  return v;
}

// Independent accumulators: 4 vectors per sum (16 f32 or 8 f64 lanes). Element i of a block goes to
// lane i % kLanes, a fixed order that does not depend on threads, and needs no reassociation.
inline constexpr int kVectors = 4;
// Elements summed in Acc lanes before they are flushed into f64 lanes: each f32 lane adds at most
// kBlock / 16 = 64 terms, so a 64K-element chunk keeps about XLA's pairwise accuracy.
inline constexpr int64_t kBlock = 1024;

// Sums over [begin, end): elements accumulated in Acc (f32 for f32/bf16/f16, f64 for f64), blocks
// of kBlock combined in f64, lanes combined in a fixed pairwise order. kWithB=false reads only `a`
// (then bb = ab = 0).
template <class Acc, bool kWithB, class TA, class TB>
Sums SumRange(const TA* a, const TB* b, int64_t begin, int64_t end) {
  using V = typename Simd<Acc>::type;
  constexpr int kWidth = Simd<Acc>::kWidth;
  constexpr int kLanes = kVectors * kWidth;
  double total_aa[kLanes] = {}, total_bb[kLanes] = {}, total_ab[kLanes] = {};
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t block_end = block + kBlock < end ? block + kBlock : end;
    V aa[kVectors] = {}, bb[kVectors] = {}, ab[kVectors] = {};
    int64_t i = block;
    for (; i + kLanes <= block_end; i += kLanes) {
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) {
        const V x = LoadSimd<Acc>(a + i + v * kWidth);
        aa[v] += x * x;
        if constexpr (kWithB) {
          const V y = LoadSimd<Acc>(b + i + v * kWidth);
          bb[v] += y * y;
          ab[v] += x * y;
        }
      }
    }
    Acc la[kLanes], lb[kLanes], lab[kLanes];
    std::memcpy(la, aa, sizeof la);
    std::memcpy(lb, bb, sizeof lb);
    std::memcpy(lab, ab, sizeof lab);
    for (int l = 0; i < block_end; ++i, ++l) {  // the block's tail, same lane rule
      const Acc x = Load<Acc>(a[i]);
      la[l] += x * x;
      if constexpr (kWithB) {
        const Acc y = Load<Acc>(b[i]);
        lb[l] += y * y;
        lab[l] += x * y;
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      total_aa[l] += double(la[l]);
      if constexpr (kWithB) {
        total_bb[l] += double(lb[l]);
        total_ab[l] += double(lab[l]);
      }
    }
  }
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) {
      total_aa[l] += total_aa[l + width];
      if constexpr (kWithB) {
        total_bb[l] += total_bb[l + width];
        total_ab[l] += total_ab[l + width];
      }
    }
  }
  return Sums{total_aa[0], total_bb[0], total_ab[0]};
}

template <class Acc, class TX, class TY>
void AxpbyRange(TX* out, const TX* x, const TY* y, Acc ca, Acc cb, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = Store<TX>(ca * Load<Acc>(x[i]) + cb * Load<Acc>(y[i]));
}

}  // namespace fromax
