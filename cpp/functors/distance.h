// DoG and DoWG: global step sizes from the distance travelled and the gradient norms, then a scaled
// SGD step. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |x0 - p|, |g + wd * p| (norm outputs).
struct DistanceNorms : contract::distance_norms {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc d = x[in::x0] - x[in::p];
    const Acc u = PlusNonzero(x[in::g], c[col::wd], x[in::p]);
    s[sum::d_norm] = d;
    s[sum::u_norm] = u;
  }
};

// dp = scale * (g + wd * p).
struct ScaledSgd : contract::scaled_sgd {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[out::p] = c[col::scale] * PlusNonzero(x[in::g], c[col::wd], x[in::p]);
  }
};

}  // namespace fromax::functors
