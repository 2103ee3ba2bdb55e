// Adam and the optimizers built on its moments: AdamW (also LAMB's update, with lr * trust ratio as
// its lr), LAMB's norms, and the hypergradient sums. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"
#include "layerwise.h"

namespace fromax::functors {

// The Adam direction from the columns every Adam row starts with (Col: the functor's columns):
// b1, b2, eps, eps_root, cm, cg, bc2. The bias-corrected first moment is cm * m' + cg * g
// (cm = 1 / (1 - b1^t), cg = 0; Nesterov: cm = b1 / (1 - b1^(t+1)), cg = (1 - b1) / (1 - b1^t)),
// the second v' / bc2 with bc2 = 1 - b2^t.
template <class Col, class Acc>
FROMAX_FN Acc AdamDirection(const Acc* c, Acc g, Acc m, Acc v, Acc* m_new, Acc* v_new) {
  const Acc b1 = c[Col::b1], b2 = c[Col::b2];
  *m_new = b1 * m + (Acc(1) - b1) * g;
  *v_new = b2 * v + (Acc(1) - b2) * (g * g);
  const Acc m_hat = c[Col::cm] * *m_new + c[Col::cg] * g;
  return m_hat / (Sqrt(*v_new / c[Col::bc2] + c[Col::eps_root]) + c[Col::eps]);
}

// dp = -lr * (dir + wd * p), m', v' (C: the contract of the functor writing them).
template <class C, class Acc>
FROMAX_FN void AdamWStep(const Acc* c, const Acc* x, Acc* y) {
  using in = typename C::in;
  using out = typename C::out;
  using col = typename C::col;
  const Acc dir = AdamDirection<col>(c, x[in::g], x[in::m], x[in::v], &y[out::m], &y[out::v]);
  y[out::p] = -c[col::lr] * PlusNonzero(dir, c[col::wd], x[in::p]);
}

struct AdamW : contract::adamw {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    AdamWStep<contract::adamw>(c, x, y);
  }
};

// AdamW that also keeps an EMA of gradients (the surprise signal): e' = e_decay * e + e_gain * g.
struct AdamWEma : contract::adamw_ema {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    AdamWStep<contract::adamw_ema>(c, x, y);
    y[out::e] = c[col::e_decay] * x[in::e] + c[col::e_gain] * x[in::g];
  }
};

// LAMB's per-tensor norms: |p|^2, |dir + wd * p|^2.
struct LambNorms : contract::lamb_norms {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    Acc m, v;
    const Acc u = PlusNonzero(AdamDirection<col>(c, x[in::g], x[in::m], x[in::v], &m, &v), c[col::wd], x[in::p]);
    s[sum::p_norm] = x[in::p];
    s[sum::u_norm] = u;
  }
};

// Hypergradient sums over the state before the step: <g, d_prev>, <g, m>, |g|^2, with
// d_prev = (m / bc1) / (sqrt(v / bc2) + eps) the previous Adam direction (bc1, bc2, eps: of the
// previous step). C: the contract of the functor whose sums these are.
template <class C, class Acc>
FROMAX_FN void HypergradientTerms(const Acc* c, const Acc* x, Acc* s) {
  using in = typename C::in;
  using sum = typename C::sum;
  using col = typename C::col;
  const Acc g = x[in::g];
  const Acc d = (x[in::m] / c[col::bc1]) / (Sqrt(x[in::v] / c[col::bc2]) + c[col::eps]);
  s[sum::g_dprev] = g * d;
  s[sum::g_m] = g * x[in::m];
  s[sum::gg] = g * g;
}

struct HypergradientSums : contract::hypergradient_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    HypergradientTerms<contract::hypergradient_sums>(c, x, s);
  }
};

// HypergradientSums plus |g - e|^2 (e: the gradient EMA).
struct SurpriseSums : contract::surprise_sums {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    HypergradientTerms<contract::surprise_sums>(c, x, s);
    const Acc r = x[in::g] - x[in::e];
    s[sum::rr] = r * r;
  }
};

// The fused LAMB step: LambNorms, the trust ratio |p| / |u|, AdamW with the learning rate scaled by
// it.
struct Lamb : contract::lamb {
  using Reduce = LambNorms;
  using Update = AdamW;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    using U = Update::col;
    row[U::b1] = c[col::b1];
    row[U::b2] = c[col::b2];
    row[U::eps] = c[col::eps];
    row[U::eps_root] = c[col::eps_root];
    row[U::cm] = c[col::cm];
    row[U::cg] = c[col::cg];
    row[U::bc2] = c[col::bc2];
    row[U::lr] = c[col::lr] * TrustRatio(s[Reduce::sum::p_norm], s[Reduce::sum::u_norm], Acc(1), Acc(0));
    row[U::wd] = c[col::wd];
  }
};

}  // namespace fromax::functors
