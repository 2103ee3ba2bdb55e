// The gradient prologue: the gradient pre-processing of an optax.chain in front of a fromax
// optimizer (clip_by_global_norm, scale, scale_by_schedule, add_decayed_weights, clip), folded into
// the optimizer's own pass over memory instead of a pass of its own. python/fromax/_prologue.py
// builds the coefficients and is the same math.
//
// WithPrologue<F> is functor F whose stream 0 (the gradient g, next to the parameter p as stream 1)
// is first replaced by
//     g' = s2 * clamp(s1 * g + d1 * p, -c, c) + d2 * p
// from five more coefficients after F's own (contract::prologue_col: s1 = pre_scale, d1 = pre_decay,
// c = clip, s2 = post_scale, d2 = post_decay; c = inf: no clamp). A d term is computed only where
// its coefficient is not 0, so 0 * p never turns an infinite p into NaN.
#pragma once

#include "common.h"

namespace fromax::functors {

// Written as selects, not branches, so that the element loops stay vectorised.
template <class Acc>
FROMAX_FN Acc ApplyPrologue(const Acc* c, Acc g, Acc p) {
  using col = contract::prologue_col;
  const Acc a = c[col::pre_scale] * g, da = c[col::pre_decay] * p;
  Acc x = Select(c[col::pre_decay] != Acc(0), a + da, a);
  x = Select(x < -c[col::clip], -c[col::clip], x);  // NaN passes through, as in jnp.clip
  x = Select(x > c[col::clip], c[col::clip], x);
  const Acc b = c[col::post_scale] * x, db = c[col::post_decay] * p;
  return Select(c[col::post_decay] != Acc(0), b + db, b);
}

template <class F>
struct WithPrologue : F {
  static_assert(F::kIn >= 2, "the prologue reads the gradient (stream 0) and the parameter (stream 1)");
  static constexpr int kCoeffs = F::kCoeffs + contract::kPrologueCols;

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

// |x| per tensor (a norm output; clip_by_global_norm's norm of a gradient only scaled so far).
struct Norm : contract::norm {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[sum::x_norm] = x[in::x];
  }
};

// |g| per tensor (a norm output), of the gradient after the prologue (clip_by_global_norm's norm).
struct GradNorm : contract::grad_norm {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc*, const Acc* x, Acc* s) {
    s[sum::g_norm] = x[in::g];
  }
};

}  // namespace fromax::functors
