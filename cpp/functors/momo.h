// MoMo and MoMo-Adam (Schaipp et al. 2023): a Polyak-type step size from the loss, capped by lr.
// python/fromax/_functors.py is the same math.
#pragma once

#include "adam.h"
#include "common.h"

namespace fromax::functors {

// <g, p>, |m'|^2, <m', p> with m' = bt m + (1 - bt) g. in: g, p, m. c: bt.
struct MomoSums {
  static constexpr int kIn = 3, kSums = 3, kCoeffs = 1;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc m = c[0] * x[2] + (Acc(1) - c[0]) * x[0];
    s[0] = x[0] * x[1];
    s[1] = m * m;
    s[2] = m * x[1];
  }
};

// dp = cp * p - tau * m'. in: g, p, m. out: dp, m'. c: bt, cp, tau.
struct Momo {
  static constexpr int kIn = 3, kOut = 2, kParam = 1, kCoeffs = 3;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc m = c[0] * x[2] + (Acc(1) - c[0]) * x[0];
    y[0] = c[1] * x[1] - c[2] * m;
    y[1] = m;
  }
};

// Columns 0..3: b1, b2, eps, bc2. m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
// precond = eps + sqrt(v' / bc2).
template <class Acc>
FROMAX_FN Acc MomoAdamPrecond(const Acc* c, Acc g, Acc m, Acc v, Acc* m_new, Acc* v_new) {
  *m_new = c[0] * m + (Acc(1) - c[0]) * g;
  *v_new = c[1] * v + (Acc(1) - c[1]) * (g * g);
  return c[2] + Sqrt(*v_new / c[3]);
}

// <m', m' / precond>, <g, p>, <m', p>. in: g, p, m, v. c: b1, b2, eps, bc2.
struct MomoAdamSums {
  static constexpr int kIn = 4, kSums = 3, kCoeffs = 4;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    Acc m, v;
    const Acc pre = MomoAdamPrecond(c, x[0], x[2], x[3], &m, &v);
    s[0] = m * (m / pre);
    s[1] = x[0] * x[1];
    s[2] = m * x[1];
  }
};

// dp = cp * p - tau * m' / precond. in: g, p, m, v. out: dp, m', v'. c: b1, b2, eps, bc2, cp, tau.
struct MomoAdam {
  static constexpr int kIn = 4, kOut = 3, kParam = 1, kCoeffs = 6;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc pre = MomoAdamPrecond(c, x[0], x[2], x[3], &y[1], &y[2]);
    y[0] = c[4] * x[1] - c[5] * y[1] / pre;
  }
};

}  // namespace fromax::functors
