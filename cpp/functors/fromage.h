// Fromage (Bernstein et al. 2020) on the elementwise engine: per-tensor sums, the coefficients the
// paper's rule derives from them, and W_new = a W + b g. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// |W|, |g| (norm outputs: the engine squares in f64 and takes the root), <W, g> in one read.
struct FromageSums : contract::fromage_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[sum::p_norm] = x[in::p];
    s[sum::g_norm] = x[in::g];
    s[sum::pg] = x[in::p] * x[in::g];
  }
};

// dW = a * W + b * g (Fromage passes a = 1/sqrt(1 + lr^2) - 1). The fused step writes W + dW, as
// optax.apply_updates would: an infinite W then gives the same NaN (inf - inf) as in optax.
struct Axpby : contract::axpby {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[out::p] = c[col::a] * x[in::p] + c[col::b] * x[in::g];
  }
};

// The fused Fromage step: FromageSums, the per-tensor coefficients the paper's rule derives from
// them, then Axpby:
//   |W|', |g|' = the norms, each raised to min_norm where it is <= min_norm (optax's safe_norm;
//            min_norm = 0, the default, leaves them as they are)
//   r      = 1 if |W|' = 0 or |g|' = 0, else |W|' / |g|'   (the paper's rule; no epsilon). Tested
//            as "= 0", not "> 0", as optax does: a NaN norm gives a NaN ratio that poisons the
//            tensor's step instead of taking the zero-norm branch.
//   root   = sqrt(1 + lr^2),  a, b = 1 / root, -lr * r / root   (W_new = a W + b g)
//   p_bound (only where |W0| > 0): |W_new| = |W| sqrt(a^2 + 2 a beta cos + beta^2) with
//            beta = b |g| / |W| and cos = <W,g> / (|W| |g|) (closed form, no extra pass, and no square
//            of a norm that could overflow); if |W_new| > cap = p_bound * |W0|, a and b are scaled by
//            cap / |W_new|.
//   Axpby's row: a - 1 (dW = W_new - W), as scale * (1/root - 1) + (scale - 1) with
//            1/root - 1 = -lr^2 / (root (1 + root)): no cancellation of 1/root against 1.
struct Fromage : contract::fromage {
  using Reduce = FromageSums;
  using Update = Axpby;
  template <class Acc>
  FROMAX_FN static Acc AtLeast(Acc norm, Acc floor) {
    return norm <= floor ? floor : norm;
  }
  // |a W + b g| from |W|, |g| and <W, g>, relative to |W| (see above); |b| |g| alone where W = 0.
  template <class Acc>
  FROMAX_FN static Acc NewNorm(Acc a, Acc b, Acc w, Acc g, Acc wg) {
    if (w == Acc(0)) return (b < Acc(0) ? -b : b) * g;
    const Acc beta = g == Acc(0) ? Acc(0) : b * (g / w);
    const Acc cos = g == Acc(0) ? Acc(0) : (wg / w) / g;
    const Acc q = a * a + Acc(2) * a * beta * cos + beta * beta;
    return w * Sqrt(q > Acc(0) ? q : Acc(0));
  }
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const Acc lr = c[col::lr], w_raw = s[Reduce::sum::p_norm], g_raw = s[Reduce::sum::g_norm], wg = s[Reduce::sum::pg];
    const Acc w_norm = AtLeast(w_raw, c[col::min_norm]), g_norm = AtLeast(g_raw, c[col::min_norm]);
    const Acc ratio = (w_norm == Acc(0) || g_norm == Acc(0)) ? Acc(1) : w_norm / g_norm;
    const Acc root = Sqrt(Acc(1) + lr * lr);
    const Acc a = Acc(1) / root;
    const Acc b = -(lr * ratio) / root;
    Acc scale = Acc(1);
    if (c[col::p0_norm] > Acc(0)) {
      const Acc new_norm = NewNorm(a, b, w_raw, g_raw, wg);
      const Acc cap = c[col::p_bound] * c[col::p0_norm];
      if (new_norm > cap) scale = cap / new_norm;
    }
    row[Update::col::a] = scale * (-(lr * lr) / (root * (Acc(1) + root))) + (scale - Acc(1));
    row[Update::col::b] = b * scale;
  }
};

}  // namespace fromax::functors
