// The gradient prologue: the gradient pre-processing of an optax.chain in front of a fromax
// optimizer (clip_by_global_norm, scale, scale_by_schedule, add_decayed_weights, clip), folded into
// the optimizer's own pass over memory instead of a pass of its own. python/fromax/_prologue.py
// builds the coefficients and is the same math.
//
// WithPrologue<F> is functor F whose stream 0 (the gradient g, next to the parameter p as stream 1)
// is first replaced by
//     g' = s2 * clamp(s1 * g + d1 * p, -c, c) + d2 * p
// from five more coefficients after F's own: s1, d1, c, s2, d2 (c = inf: no clamp). A d term is
// computed only where its coefficient is not 0, so 0 * p never turns an infinite p into NaN.
#pragma once

#include "common.h"

namespace fromax::functors {

inline constexpr int kPrologueCols = 5;

// Written as selects, not branches, so that the element loops stay vectorised.
template <class Acc>
FROMAX_FN Acc ApplyPrologue(const Acc* c, Acc g, Acc p) {
  const Acc a = c[0] * g, da = c[1] * p;
  Acc x = c[1] != Acc(0) ? a + da : a;
  x = x < -c[2] ? -c[2] : x;  // NaN passes through, as in jnp.clip
  x = x > c[2] ? c[2] : x;
  const Acc b = c[3] * x, db = c[4] * p;
  return c[4] != Acc(0) ? b + db : b;
}

template <class F>
struct WithPrologue : F {
  static_assert(F::kIn >= 2, "the prologue reads the gradient (stream 0) and the parameter (stream 1)");
  static constexpr int kCoeffs = F::kCoeffs + kPrologueCols;

  template <class Acc>
  FROMAX_FN static void Prepare(const Acc* c, const Acc* x, Acc* xg) {
#if !defined(__CUDACC__)
#pragma GCC unroll 8
#endif
    for (int k = 1; k < F::kIn; ++k) xg[k] = x[k];
    xg[0] = ApplyPrologue(c + F::kCoeffs, x[0], x[1]);
  }
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    Acc xg[F::kIn];
    Prepare(c, x, xg);
    F::Reduce(c, xg, s);
  }
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    Acc xg[F::kIn];
    Prepare(c, x, xg);
    F::Update(c, xg, y);
  }
};

// |x|^2 per tensor (clip_by_global_norm's norm of a gradient only scaled so far). in: x.
struct SumSq {
  static constexpr int kIn = 1, kSums = 1, kCoeffs = 0;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[0] = x[0] * x[0];
  }
};

// |g|^2 per tensor, of the gradient after the prologue (clip_by_global_norm's norm). in: g, p.
struct GradSq {
  static constexpr int kIn = 2, kSums = 1, kCoeffs = 0;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[0] = x[0] * x[0];
  }
};

}  // namespace fromax::functors
