// D-Adaptation AdamW and Prodigy: a distance estimate D from two global sums, then an Adam step
// scaled by D. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// Prodigy sums: <g, p0 - p>, sum |s'| with s' = beta3 * s + k * (d * g) / d0.
struct ProdigySums : contract::prodigy_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    s[sum::g_dist] = x[in::g] * (x[in::p0] - x[in::p]);
    s[sum::s_abs] = Abs(c[col::beta3] * x[in::s] + c[col::k] * (c[col::d] * x[in::g]) / c[col::d0]);
  }
};

// Prodigy step, dg = d * g: m' = b1 m + (1 - b1) dg, v' = b2 v + (1 - b2) dg^2, s' as above,
// dp = -wd * dlr * p - dlr * m' / (sqrt(v') + d_eps), d_eps = d_new * eps.
struct Prodigy : contract::prodigy {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc dg = c[col::d] * x[in::g];
    y[out::m] = c[col::b1] * x[in::m] + (Acc(1) - c[col::b1]) * dg;
    y[out::v] = c[col::b2] * x[in::v] + (Acc(1) - c[col::b2]) * dg * dg;
    y[out::s] = c[col::beta3] * x[in::s] + c[col::k] * dg / c[col::d0];
    y[out::p] = -c[col::wd] * c[col::dlr] * x[in::p] - c[col::dlr] * y[out::m] / (Sqrt(y[out::v]) + c[col::d_eps]);
  }
};

// D-Adapt sums: <g, s / (sqrt(v) + eps)>, sum |s'| with s' = sb2 * s + (1 - sb2) * dlr * g.
struct DAdaptSums : contract::dadapt_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    s[sum::g_s] = x[in::g] * (x[in::s] / (Sqrt(x[in::v]) + c[col::eps]));
    s[sum::s_abs] = Abs(c[col::sb2] * x[in::s] + (Acc(1) - c[col::sb2]) * c[col::dlr] * x[in::g]);
  }
};

// D-Adapt AdamW step: m' = b1 m + (1 - b1) dlr g, v' = b2 v + (1 - b2) g^2, s' as above,
// dp = -wd * dlr * p - m' / (sqrt(v') + eps).
// d_new (the D estimate from this step's DAdaptSums) is unused by the math: the step uses the
// previous estimate. It is there so that the update depends on the reduction, which reads the
// s and v the update then overwrites; without that order XLA copies both first.
struct DAdapt : contract::dadapt {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc g = x[in::g];
    y[out::m] = c[col::b1] * x[in::m] + (Acc(1) - c[col::b1]) * c[col::dlr] * g;
    y[out::v] = c[col::b2] * x[in::v] + (Acc(1) - c[col::b2]) * g * g;
    y[out::s] = c[col::sb2] * x[in::s] + (Acc(1) - c[col::sb2]) * c[col::dlr] * g;
    y[out::p] = -c[col::wd] * c[col::dlr] * x[in::p] - y[out::m] / (Sqrt(y[out::v]) + c[col::eps]);
  }
};

}  // namespace fromax::functors
