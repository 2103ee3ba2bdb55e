// COCOB-Backprop (Orabona & Tommasi 2017): a coin-betting step per coordinate, no reduction.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// c_ = lr * (g + wd * p); L' = max(L, |c_|); G' = G + |c_|; R' = max(R - c_ (p - p0), 0);
// C' = C - c_; dp = -p + (p0 + C' / (L' max(G' + L', alpha L')) (L' + R')).
// in: g, p, p0, C, L, G, R. out: dp, C', L', G', R'. c: lr, wd, alpha.
struct Cocob {
  static constexpr int kIn = 7, kOut = 5, kParam = 1, kCoeffs = 3;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc p = x[1], p0 = x[2];
    const Acc g = c[0] * (x[0] + c[1] * p);
    const Acc L = Max(x[4], Abs(g));
    const Acc G = x[5] + Abs(g);
    const Acc R = Max(x[6] - g * (p - p0), Acc(0));
    const Acc C = x[3] - g;
    y[0] = -p + (p0 + C / (L * Max(G + L, c[2] * L)) * (L + R));
    y[1] = C;
    y[2] = L;
    y[3] = G;
    y[4] = R;
  }
};

}  // namespace fromax::functors
