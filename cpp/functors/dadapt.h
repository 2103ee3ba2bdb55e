// D-Adaptation AdamW and Prodigy: a distance estimate D from two global sums, then an Adam step
// scaled by D. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// Prodigy sums: <g, p0 - p>, sum |s'| with s' = beta3 * s + k * (d * g) / d0.
// in: g, p, s, p0. c: beta3, d, k, d0.
struct ProdigySums {
  static constexpr int kIn = 4, kSums = 2, kCoeffs = 4;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    s[0] = x[0] * (x[3] - x[1]);
    s[1] = Abs(c[0] * x[2] + c[2] * (c[1] * x[0]) / c[3]);
  }
};

// Prodigy step, dg = d * g: m' = b1 m + (1 - b1) dg, v' = b2 v + (1 - b2) dg^2, s' as above,
// dp = -wd * dlr * p - dlr * m' / (sqrt(v') + d_new * eps).
// in: g, p, m, v, s. out: dp, m', v', s'. c: b1, b2, beta3, d, k, d0, dlr, wd, d_new * eps.
struct Prodigy {
  static constexpr int kIn = 5, kOut = 4, kParam = 1, kCoeffs = 9;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc dg = c[3] * x[0];
    y[1] = c[0] * x[2] + (Acc(1) - c[0]) * dg;
    y[2] = c[1] * x[3] + (Acc(1) - c[1]) * dg * dg;
    y[3] = c[2] * x[4] + c[4] * dg / c[5];
    y[0] = -c[7] * c[6] * x[1] - c[6] * y[1] / (Sqrt(y[2]) + c[8]);
  }
};

// D-Adapt sums: <g, s / (sqrt(v) + eps)>, sum |s'| with s' = sb2 * s + (1 - sb2) * dlr * g.
// in: g, s, v. c: eps, sb2, dlr.
struct DAdaptSums {
  static constexpr int kIn = 3, kSums = 2, kCoeffs = 3;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    s[0] = x[0] * (x[1] / (Sqrt(x[2]) + c[0]));
    s[1] = Abs(c[1] * x[1] + (Acc(1) - c[1]) * c[2] * x[0]);
  }
};

// D-Adapt AdamW step: m' = b1 m + (1 - b1) dlr g, v' = b2 v + (1 - b2) g^2, s' as above,
// dp = -wd * dlr * p - m' / (sqrt(v') + eps).
// in: g, p, m, v, s. out: dp, m', v', s'. c: b1, b2, sb2, dlr, eps, wd, d_new.
// d_new (the D estimate from this step's DAdaptSums) is unused by the math: the step uses the
// previous estimate. It is there so that the update depends on the reduction, which reads the
// s and v the update then overwrites; without that order XLA copies both first.
struct DAdapt {
  static constexpr int kIn = 5, kOut = 4, kParam = 1, kCoeffs = 7;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc g = x[0];
    y[1] = c[0] * x[2] + (Acc(1) - c[0]) * c[3] * g;
    y[2] = c[1] * x[3] + (Acc(1) - c[1]) * g * g;
    y[3] = c[2] * x[4] + (Acc(1) - c[2]) * c[3] * g;
    y[0] = -c[5] * c[3] * x[1] - y[1] / (Sqrt(y[2]) + c[4]);
  }
};

}  // namespace fromax::functors
