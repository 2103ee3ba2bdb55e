// LARS and NovoGrad: per-tensor scalars (trust ratio, gradient norm) applied in one update pass.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// LARS norms: |p|^2, |g + wd * p|^2. in: g, p. c: wd.
struct LarsNorms {
  static constexpr int kIn = 2, kSums = 2, kCoeffs = 1;
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc u = x[0] + c[0] * x[1];
    s[0] = x[1] * x[1];
    s[1] = u * u;
  }
};

// Scaled step with momentum (optax.trace): u = scale * (g + wd * p), t' = u + decay * t,
// dp = t' (or u + decay * t' with Nesterov). in: g, p, t. out: dp, t'. c: wd, scale, decay, nesterov.
struct Momentum {
  static constexpr int kIn = 3, kOut = 2, kParam = 1, kCoeffs = 4;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc u = c[1] * (x[0] + c[0] * x[1]);
    const Acc t = u + c[2] * x[2];
    y[0] = c[3] != Acc(0) ? u + c[2] * t : t;
    y[1] = t;
  }
};

// NovoGrad: m' = b1 * m + (g / den + wd * p) (b1 = 0 on the first step), dp = -lr * m', with
// den = sqrt(nu + eps_root) + eps from the tensor's second moment nu. in: g, p, m. out: dp, m'.
// c: b1, den, wd, lr.
struct Novograd {
  static constexpr int kIn = 3, kOut = 2, kParam = 1, kCoeffs = 4;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc m = c[0] * x[2] + (x[0] / c[1] + c[2] * x[1]);
    y[0] = -c[3] * m;
    y[1] = m;
  }
};

}  // namespace fromax::functors
