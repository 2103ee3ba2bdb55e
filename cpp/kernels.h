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

// Lanes of independent accumulators: a fixed summation order that the compiler can vectorise
// without reassociating (no -ffast-math).
inline constexpr int kLanes = 16;
// Elements summed in Acc lanes before the lanes are flushed into f64 lanes: each f32 lane adds at
// most kBlock / kLanes = 64 terms, so a 64K-element chunk keeps ~XLA's pairwise accuracy.
inline constexpr int64_t kBlock = 1024;

// Sums over [begin, end): elements accumulated in Acc (f32 for f32/bf16/f16, f64 for f64), blocks
// of kBlock combined in f64, lanes combined in a fixed pairwise order. kWithB=false reads only `a`
// (then bb = ab = 0).
template <class Acc, bool kWithB, class TA, class TB>
Sums SumRange(const TA* a, const TB* b, int64_t begin, int64_t end) {
  double total_aa[kLanes] = {}, total_bb[kLanes] = {}, total_ab[kLanes] = {};
  for (int64_t block = begin; block < end; block += kBlock) {
    const int64_t block_end = block + kBlock < end ? block + kBlock : end;
    Acc aa[kLanes] = {}, bb[kLanes] = {}, ab[kLanes] = {};
    int64_t i = block;
    for (; i + kLanes <= block_end; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const Acc x = Load<Acc>(a[i + l]);
        aa[l] += x * x;
        if constexpr (kWithB) {
          const Acc y = Load<Acc>(b[i + l]);
          bb[l] += y * y;
          ab[l] += x * y;
        }
      }
    }
    for (int l = 0; i < block_end; ++i, ++l) {
      const Acc x = Load<Acc>(a[i]);
      aa[l] += x * x;
      if constexpr (kWithB) {
        const Acc y = Load<Acc>(b[i]);
        bb[l] += y * y;
        ab[l] += x * y;
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      total_aa[l] += double(aa[l]);
      if constexpr (kWithB) {
        total_bb[l] += double(bb[l]);
        total_ab[l] += double(ab[l]);
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
