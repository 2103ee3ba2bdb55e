// LARS and NovoGrad: per-tensor scalars (trust ratio, gradient norm) applied in one update pass.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"
#include "prologue.h"

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

// optax.scale_by_trust_ratio's per-tensor ratio from squared norms: c |p| / (|u| + eps), 1 where
// either norm is 0.
template <class Acc>
FROMAX_FN Acc TrustRatio(Acc p_sq, Acc u_sq, Acc c, Acc eps) {
  const bool both = p_sq > Acc(0) && u_sq > Acc(0);
  return both ? c * Sqrt(p_sq) / (Sqrt(u_sq) + eps) : Acc(1);
}

// The fused LARS step: LarsNorms, the trust ratio (1 outside the trust-ratio mask), Momentum with
// the learning rate scaled by it. c: wd, lr, trust coefficient, eps, trust mask, momentum, nesterov.
struct Lars {
  using Reduce = LarsNorms;
  using Update = Momentum;
  static constexpr int kCoeffs = 7;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const Acc ratio = c[4] > Acc(0) ? TrustRatio(s[0], s[1], c[2], c[3]) : Acc(1);
    row[0] = c[0];
    row[1] = -c[1] * ratio;
    row[2] = c[5];
    row[3] = c[6];
  }
};

// The fused NovoGrad step: |g|^2 per tensor (SumSq), the tensor's second moment nu' = |g|^2 on the
// first step, else b2 * nu + (1 - b2) * |g|^2, and Novograd with den = sqrt(nu' + eps_root) + eps
// (and no b1 * m on the first step). The call returns |g|^2, from which JAX keeps nu'.
// c: nu, first (1 or 0), b1, b2, 1 - b2, eps, eps_root, wd, lr.
struct NovogradStep {
  using Reduce = SumSq;
  using Update = Novograd;
  static constexpr int kCoeffs = 9;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const bool first = c[1] != Acc(0);
    const Acc nu = first ? s[0] : c[3] * c[0] + c[4] * s[0];
    row[0] = first ? Acc(0) : c[2];
    row[1] = Sqrt(nu + c[6]) + c[5];
    row[2] = c[7];
    row[3] = c[8];
  }
};

}  // namespace fromax::functors
