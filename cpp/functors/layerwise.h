// LARS and NovoGrad: per-tensor scalars (trust ratio, gradient norm) applied in one update pass.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"
#include "prologue.h"

namespace fromax::functors {

// LARS norms (norm outputs): |p|, |g + wd * p|.
struct LarsNorms : contract::lars_norms {
  template <class Acc>
  FROMAX_FN static void Reduce(const Acc* c, const Acc* x, Acc* s) {
    const Acc u = PlusNonzero(x[in::g], c[col::wd], x[in::p]);
    s[sum::p_norm] = x[in::p];
    s[sum::u_norm] = u;
  }
};

// Scaled step with momentum (optax.trace): u = scale * (g + wd * p), t' = u + decay * t,
// dp = t' (or u + decay * t' with Nesterov).
struct Momentum : contract::momentum {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc u = c[col::scale] * PlusNonzero(x[in::g], c[col::wd], x[in::p]);
    const Acc t = u + c[col::decay] * x[in::t];
    y[out::p] = c[col::nesterov] != Acc(0) ? u + c[col::decay] * t : t;
    y[out::t] = t;
  }
};

// NovoGrad: m' = b1 * m + (g / den + wd * p) (b1 = 0 on the first step), dp = -lr * m', with
// den = sqrt(nu + eps_root) + eps from the tensor's second moment nu.
struct Novograd : contract::novograd {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    // b1 = 0 on the first step: m is then not read, as optax selects (0 * m would make a NaN m poison m').
    const Acc m = PlusNonzero(PlusNonzero(x[in::g] / c[col::den], c[col::wd], x[in::p]), c[col::b1], x[in::m]);
    y[out::p] = -c[col::lr] * m;
    y[out::m] = m;
  }
};

// optax.scale_by_trust_ratio's per-tensor ratio from the norms: c |p| / (|u| + eps), 1 where
// either norm is 0. Tested as "= 0", as optax does: a NaN norm gives a NaN ratio (it poisons the
// tensor's step, as in optax), not the ratio 1 of the zero branch.
template <class Acc>
FROMAX_FN Acc TrustRatio(Acc p_norm, Acc u_norm, Acc c, Acc eps) {
  const bool zero = p_norm == Acc(0) || u_norm == Acc(0);
  return zero ? Acc(1) : c * p_norm / (u_norm + eps);
}

// The fused LARS step: LarsNorms, the trust ratio (1 outside the trust-ratio mask), Momentum with
// the learning rate scaled by it.
struct Lars : contract::lars {
  using Reduce = LarsNorms;
  using Update = Momentum;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const Acc ratio = c[col::trust_mask] > Acc(0)
                          ? TrustRatio(s[Reduce::sum::p_norm], s[Reduce::sum::u_norm], c[col::trust_coefficient], c[col::eps])
                          : Acc(1);
    row[Update::col::wd] = c[col::wd];
    row[Update::col::scale] = -c[col::lr] * ratio;
    row[Update::col::decay] = c[col::momentum];
    row[Update::col::nesterov] = c[col::nesterov];
  }
};

// The fused NovoGrad step: |g| per tensor (Norm), the tensor's second moment nu' = |g|^2 on the
// first step, else b2 * nu + (1 - b2) * |g|^2 (optax's state: a squared norm), and Novograd with
// den = sqrt(nu' + eps_root) + eps (and no b1 * m on the first step). The call returns |g|, from
// which JAX keeps nu'.
struct NovogradStep : contract::novograd_step {
  using Reduce = Norm;
  using Update = Novograd;
  template <class Acc>
  FROMAX_FN static void Finish(const Acc* c, const Acc* s, Acc* row) {
    const bool first = c[col::first] != Acc(0);
    const Acc g_sq = s[Reduce::sum::x_norm] * s[Reduce::sum::x_norm];
    const Acc nu = first ? g_sq : c[col::b2] * c[col::nu] + c[col::one_minus_b2] * g_sq;
    row[Update::col::b1] = first ? Acc(0) : c[col::b1];
    row[Update::col::den] = Sqrt(nu + c[col::eps_root]) + c[col::eps];
    row[Update::col::wd] = c[col::wd];
    row[Update::col::lr] = c[col::lr];
  }
};

}  // namespace fromax::functors
