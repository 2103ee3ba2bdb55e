// Fromage (Bernstein et al. 2020) on the elementwise engine: per-tensor sums, the coefficients the
// paper's rule derives from them, and W_new = a W + b g. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |W|^2, |g|^2, <W, g> in one read. in: g, W.
struct FromageSums {
  static constexpr int kIn = 2, kSums = 3, kCoeffs = 0;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[0] = x[1] * x[1];
    s[1] = x[0] * x[0];
    s[2] = x[1] * x[0];
  }
};

// out = a * W + b * g, written as the new W itself (kAbsolute: the fused step does not add W to it;
// for the optax contract the caller passes a - 1 as a). in: g, W. out: W'. c: a, b.
struct Axpby {
  static constexpr int kIn = 2, kOut = 1, kParam = 1, kCoeffs = 2;
  static constexpr bool kAbsolute = true;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[0] = c[0] * x[1] + c[1] * x[0];
  }
};

// The per-tensor coefficients of one Fromage step, from the sums of FromageSums.
//   r      = |W| / |g|   if |W| > 0 and |g| > 0, else 1          (the paper's rule; no epsilon)
//   root   = sqrt(1 + lr^2),  a, b = 1 / root, -lr * r / root
//   p_bound (only where |W0| > 0): |W_new|^2 = a^2 |W|^2 + 2ab <W,g> + b^2 |g|^2 (closed form, no
//            extra pass); if |W_new| > cap = p_bound * |W0|, a and b are scaled by cap / |W_new|.
// c: lr, p_bound, |W0| (0: uncapped). s: |W|^2, |g|^2, <W,g>. row: a, b.
template <class Acc>
FROMAX_FN void FromageCoefficients(const Acc* c, const Acc* s, Acc* row) {
  const Acc lr = c[0], p_bound = c[1], w0 = c[2], ww = s[0], gg = s[1], wg = s[2];
  const Acc w_norm = Sqrt(ww), g_norm = Sqrt(gg);
  const Acc ratio = (w_norm > Acc(0) && g_norm > Acc(0)) ? w_norm / g_norm : Acc(1);
  const Acc root = Sqrt(Acc(1) + lr * lr);
  const Acc a = Acc(1) / root;
  const Acc b = -(lr * ratio) / root;
  Acc scale = Acc(1);
  if (w0 > Acc(0)) {
    const Acc new_sq = a * a * ww + Acc(2) * a * b * wg + b * b * gg;
    const Acc new_norm = Sqrt(new_sq > Acc(0) ? new_sq : Acc(0));
    const Acc cap = p_bound * w0;
    if (new_norm > cap) scale = cap / new_norm;
  }
  row[0] = a * scale;
  row[1] = b * scale;
}

// The fused Fromage step: FromageSums, then FromageCoefficients, then Axpby, per tensor.
struct Fromage {
  using Reduce = FromageSums;
  using Update = Axpby;
  static constexpr int kCoeffs = 3;  // lr, p_bound, |W0|
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    FromageCoefficients(c, s, row);
  }
};

}  // namespace fromax::functors
