// Fromage (Bernstein et al. 2020) on the elementwise engine: per-tensor sums, the coefficients the
// paper's rule derives from them, and W_new = a W + b g. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |W|^2, |g|^2, <W, g> in one read.
struct FromageSums : contract::fromage_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[sum::pp] = x[in::p] * x[in::p];
    s[sum::gg] = x[in::g] * x[in::g];
    s[sum::pg] = x[in::p] * x[in::g];
  }
};

// out = a * W + b * g, written as the new W itself (kAbsolute: the fused step does not add W to it;
// for the optax contract the caller passes a - 1 as a).
struct Axpby : contract::axpby {
  static constexpr bool kAbsolute = true;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[out::p] = c[col::a] * x[in::p] + c[col::b] * x[in::g];
  }
};

// The fused Fromage step: FromageSums, the per-tensor coefficients the paper's rule derives from
// them, then Axpby:
//   r      = |W| / |g|   if |W| > 0 and |g| > 0, else 1          (the paper's rule; no epsilon)
//   root   = sqrt(1 + lr^2),  a, b = 1 / root, -lr * r / root
//   p_bound (only where |W0| > 0): |W_new|^2 = a^2 |W|^2 + 2ab <W,g> + b^2 |g|^2 (closed form, no
//            extra pass); if |W_new| > cap = p_bound * |W0|, a and b are scaled by cap / |W_new|.
struct Fromage : contract::fromage {
  using Reduce = FromageSums;
  using Update = Axpby;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const Acc lr = c[col::lr], ww = s[Reduce::sum::pp], gg = s[Reduce::sum::gg], wg = s[Reduce::sum::pg];
    const Acc w_norm = Sqrt(ww), g_norm = Sqrt(gg);
    const Acc ratio = (w_norm > Acc(0) && g_norm > Acc(0)) ? w_norm / g_norm : Acc(1);
    const Acc root = Sqrt(Acc(1) + lr * lr);
    const Acc a = Acc(1) / root;
    const Acc b = -(lr * ratio) / root;
    Acc scale = Acc(1);
    if (c[col::p0_norm] > Acc(0)) {
      const Acc new_sq = a * a * ww + Acc(2) * a * b * wg + b * b * gg;
      const Acc new_norm = Sqrt(new_sq > Acc(0) ? new_sq : Acc(0));
      const Acc cap = c[col::p_bound] * c[col::p0_norm];
      if (new_norm > cap) scale = cap / new_norm;
    }
    row[Update::col::a] = a * scale;
    row[Update::col::b] = b * scale;
  }
};

}  // namespace fromax::functors
