// Adam and the optimizers built on its moments: AdamW (also LAMB's update, with lr * trust ratio as
// its lr), LAMB's norms, and the hypergradient sums. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"
#include "layerwise.h"

namespace fromax::functors {

// Columns 0..6 of an Adam row: b1, b2, eps, eps_root, cm, cg, bc2. The bias-corrected first moment
// is cm * m' + cg * g (cm = 1 / (1 - b1^t), cg = 0; Nesterov: cm = b1 / (1 - b1^(t+1)),
// cg = (1 - b1) / (1 - b1^t)), the second v' / bc2 with bc2 = 1 - b2^t.
inline constexpr int kAdamCols = 7;

template <class Acc>
FROMAX_FN Acc AdamDirection(const Acc* c, Acc g, Acc m, Acc v, Acc* m_new, Acc* v_new) {
  const Acc b1 = c[0], b2 = c[1], eps = c[2], eps_root = c[3];
  *m_new = b1 * m + (Acc(1) - b1) * g;
  *v_new = b2 * v + (Acc(1) - b2) * (g * g);
  const Acc m_hat = c[4] * *m_new + c[5] * g;
  return m_hat / (Sqrt(*v_new / c[6] + eps_root) + eps);
}

// in: g, p, m, v. out: dp = -lr * (dir + wd * p), m', v'. c: Adam, lr, wd.
struct AdamW {
  static constexpr int kIn = 4, kOut = 3, kParam = 1, kCoeffs = kAdamCols + 2;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc dir = AdamDirection(c, x[0], x[2], x[3], &y[1], &y[2]);
    y[0] = -c[kAdamCols] * (dir + c[kAdamCols + 1] * x[1]);
  }
};

// AdamW that also keeps an EMA of gradients (the surprise signal): in: g, p, m, v, e.
// out: dp, m', v', e' = ca * e + cb * g. c: Adam, lr, wd, ca, cb.
struct AdamWEma {
  static constexpr int kIn = 5, kOut = 4, kParam = 1, kCoeffs = kAdamCols + 4;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    AdamW::Update(c, x, y);
    y[3] = c[kAdamCols + 2] * x[4] + c[kAdamCols + 3] * x[0];
  }
};

// LAMB's per-tensor norms: |p|^2, |dir + wd * p|^2. in: g, p, m, v. c: Adam, wd.
struct LambNorms {
  static constexpr int kIn = 4, kSums = 2, kCoeffs = kAdamCols + 1;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    Acc m, v;
    const Acc u = AdamDirection(c, x[0], x[2], x[3], &m, &v) + c[kAdamCols] * x[1];
    s[0] = x[1] * x[1];
    s[1] = u * u;
  }
};

// Hypergradient sums over the state before the step: <g, d_prev>, <g, m>, |g|^2, with
// d_prev = (m / bc1) / (sqrt(v / bc2) + eps) the previous Adam direction. in: g, m, v.
// c: bc1, bc2, eps (of the previous step).
struct HypergradientSums {
  static constexpr int kIn = 3, kSums = 3, kCoeffs = 3;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc d = (x[1] / c[0]) / (Sqrt(x[2] / c[1]) + c[2]);
    s[0] = x[0] * d;
    s[1] = x[0] * x[1];
    s[2] = x[0] * x[0];
  }
};

// HypergradientSums plus |g - e|^2 (e: the gradient EMA). in: g, m, v, e.
struct SurpriseSums {
  static constexpr int kIn = 4, kSums = 4, kCoeffs = 3;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    HypergradientSums::Reduce(c, x, s);
    const Acc r = x[0] - x[3];
    s[3] = r * r;
  }
};

// The fused LAMB step: LambNorms, the trust ratio |p| / |u|, AdamW with the learning rate scaled by
// it. c: Adam, wd, lr.
struct Lamb {
  using Reduce = LambNorms;
  using Update = AdamW;
  static constexpr int kCoeffs = kAdamCols + 2;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    for (int k = 0; k < kAdamCols; ++k) row[k] = c[k];
    row[kAdamCols] = c[kAdamCols + 1] * TrustRatio(s[0], s[1], Acc(1), Acc(0));
    row[kAdamCols + 1] = c[kAdamCols];
  }
};

}  // namespace fromax::functors
