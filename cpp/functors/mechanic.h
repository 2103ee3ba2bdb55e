// Mechanic (Cutkosky, Defazio & Mehta 2023): a learned global scale of any base optimizer's steps.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |g|, |p| (norm outputs), <g, x0 - p>, <p, x0 - p>.
struct MechanicSums : contract::mechanic_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    const Acc g = x[in::g], p = x[in::p], d = x[in::x0] - p;
    s[sum::g_norm] = g;
    s[sum::p_norm] = p;
    s[sum::g_delta] = g * d;
    s[sum::p_delta] = p * d;
  }
};

// p_new = x0 - s_new * ((x0 - p) / s_old_eps - u), dp = p_new - p (u: the base optimizer's
// update; s_old_eps = s_old + eps).
struct Mechanic : contract::mechanic {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc p = x[in::p], x0 = x[in::x0];
    y[out::p] = (x0 - c[col::s_new] * ((x0 - p) / c[col::s_old_eps] - x[in::u])) - p;
  }
};

}  // namespace fromax::functors
