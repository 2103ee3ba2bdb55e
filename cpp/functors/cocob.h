// COCOB-Backprop (Orabona & Tommasi 2017): a coin-betting step per coordinate, no reduction.
// python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// c_ = lr * (g + wd * p); L' = max(L, |c_|); G' = G + |c_|; R' = max(R - c_ (p - p0), 0);
// C' = C - c_; dp = -p + (p0 + C' / (L' max(G' + L', alpha L')) (L' + R')), with C the gradient
// sum (grad_sum), L the largest gradient (max_grad), G the sum of |gradient| (abs_grad_sum) and R
// the reward.
struct Cocob : contract::cocob {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc p = x[in::p], p0 = x[in::p0];
    const Acc g = c[col::lr] * PlusNonzero(x[in::g], c[col::wd], p);
    const Acc L = Max(x[in::max_grad], Abs(g));
    const Acc G = x[in::abs_grad_sum] + Abs(g);
    const Acc R = Max(x[in::reward] - g * (p - p0), Acc(0));
    const Acc C = x[in::grad_sum] - g;
    y[out::p] = -p + (p0 + C / (L * Max(G + L, c[col::alpha] * L)) * (L + R));
    y[out::grad_sum] = C;
    y[out::max_grad] = L;
    y[out::abs_grad_sum] = G;
    y[out::reward] = R;
  }
};

}  // namespace fromax::functors
