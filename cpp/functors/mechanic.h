// Mechanic (Cutkosky, Defazio & Mehta 2023): a learned global scale of any base optimizer's steps.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |g|^2, |p|^2, <g, x0 - p>, <p, x0 - p>. in: g, p, x0.
struct MechanicSums {
  static constexpr int kIn = 3, kSums = 4, kCoeffs = 1;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    const Acc d = x[2] - x[1];
    s[0] = x[0] * x[0];
    s[1] = x[1] * x[1];
    s[2] = x[0] * d;
    s[3] = x[1] * d;
  }
};

// p_new = x0 - s_new * ((x0 - p) / (s_old + eps) - u), dp = p_new - p (u: the base optimizer's
// update). in: p, x0, u. out: dp. c: s_old + eps, s_new.
struct Mechanic {
  static constexpr int kIn = 3, kOut = 1, kParam = 0, kCoeffs = 2;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc p = x[0], x0 = x[1];
    y[0] = (x0 - c[1] * ((x0 - p) / c[0] - x[2])) - p;
  }
};

}  // namespace fromax::functors
