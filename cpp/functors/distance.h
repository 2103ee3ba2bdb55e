// DoG and DoWG: global step sizes from the distance travelled and the gradient norms, then a scaled
// SGD step. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |x0 - p|^2, |g + wd * p|^2. in: g, p, x0. c: wd.
struct DistanceNorms {
  static constexpr int kIn = 3, kSums = 2, kCoeffs = 1;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc d = x[2] - x[1];
    const Acc u = x[0] + c[0] * x[1];
    s[0] = d * d;
    s[1] = u * u;
  }
};

// dp = scale * (g + wd * p). in: g, p. out: dp. c: wd, scale.
struct ScaledSgd {
  static constexpr int kIn = 2, kOut = 1, kParam = 1, kCoeffs = 2;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[0] = c[1] * (x[0] + c[0] * x[1]);
  }
};

}  // namespace fromax::functors
