// MoMo and MoMo-Adam (Schaipp et al. 2023): a Polyak-type step size from the loss, capped by lr.
// python/fromax/_functors.py is the same math.
#pragma once

#include "adam.h"
#include "common.h"

namespace fromax::functors {

// <g, p>, |m'|^2, <m', p> with m' = bt m + (1 - bt) g.
struct MomoSums : contract::momo_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc m = c[col::bt] * x[in::m] + (Acc(1) - c[col::bt]) * x[in::g];
    s[sum::gp] = x[in::g] * x[in::p];
    s[sum::mm] = m * m;
    s[sum::mp] = m * x[in::p];
  }
};

// dp = cp * p - tau * m'.
struct Momo : contract::momo {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc m = c[col::bt] * x[in::m] + (Acc(1) - c[col::bt]) * x[in::g];
    y[out::p] = c[col::cp] * x[in::p] - c[col::tau] * m;
    y[out::m] = m;
  }
};

// m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2, precond = eps + sqrt(v' / bc2) (Col: the
// functor's columns).
template <class Col, class Acc>
FROMAX_FN Acc MomoAdamPrecond(const Acc* c, Acc g, Acc m, Acc v, Acc* m_new, Acc* v_new) {
  *m_new = c[Col::b1] * m + (Acc(1) - c[Col::b1]) * g;
  *v_new = c[Col::b2] * v + (Acc(1) - c[Col::b2]) * (g * g);
  return c[Col::eps] + Sqrt(*v_new / c[Col::bc2]);
}

// <m', m' / precond>, <g, p>, <m', p>.
struct MomoAdamSums : contract::momo_adam_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    Acc m, v;
    const Acc pre = MomoAdamPrecond<col>(c, x[in::g], x[in::m], x[in::v], &m, &v);
    s[sum::mm_pre] = m * (m / pre);
    s[sum::gp] = x[in::g] * x[in::p];
    s[sum::mp] = m * x[in::p];
  }
};

// dp = cp * p - tau * m' / precond.
struct MomoAdam : contract::momo_adam {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc pre = MomoAdamPrecond<col>(c, x[in::g], x[in::m], x[in::v], &y[out::m], &y[out::v]);
    y[out::p] = c[col::cp] * x[in::p] - c[col::tau] * y[out::m] / pre;
  }
};

}  // namespace fromax::functors
