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
// without reassociating (no -ffast-math), and ~16x less rounding error than one running sum.
inline constexpr int kLanes = 16;

// Sums over [begin, end), accumulated in Acc (f32 for f32/bf16/f16, f64 for f64), lanes combined in a
// fixed pairwise order. kWithB=false reads only `a` (then bb = ab = 0).
template <class Acc, bool kWithB, class TA, class TB>
Sums SumRange(const TA* a, const TB* b, int64_t begin, int64_t end) {
  Acc aa[kLanes] = {}, bb[kLanes] = {}, ab[kLanes] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
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
  for (int l = 0; i < end; ++i, ++l) {
    const Acc x = Load<Acc>(a[i]);
    aa[l] += x * x;
    if constexpr (kWithB) {
      const Acc y = Load<Acc>(b[i]);
      bb[l] += y * y;
      ab[l] += x * y;
    }
  }
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) {
      aa[l] += aa[l + width];
      if constexpr (kWithB) {
        bb[l] += bb[l + width];
        ab[l] += ab[l + width];
      }
    }
  }
  return Sums{double(aa[0]), double(bb[0]), double(ab[0])};
}

template <class Acc, class TX, class TY>
void AxpbyRange(TX* out, const TX* x, const TY* y, Acc ca, Acc cb, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = Store<TX>(ca * Load<Acc>(x[i]) + cb * Load<Acc>(y[i]));
}

}  // namespace fromax
