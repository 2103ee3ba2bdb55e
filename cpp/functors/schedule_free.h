// Schedule-Free (Defazio et al. 2024): the iterate y interpolates between the base optimizer's
// sequence z and its running average x. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// z' = z + u; x = (1 - ck) (y - (1 - b1) z) / b1 + ck z'; y' = b1 x + (1 - b1) z'. Returns
// dp = y' - y and writes z' (Col: the functor's columns).
template <class Col, class Acc>
FROMAX_FN Acc ScheduleFreeStep(const Acc* c, Acc y, Acc z, Acc u, Acc* z_new) {
  const Acc b1 = c[Col::b1], ck = c[Col::ck];
  *z_new = z + u;
  const Acc x_prev = (y - (Acc(1) - b1) * z) / b1;
  const Acc x = (Acc(1) - ck) * x_prev + ck * *z_new;
  return (b1 * x + (Acc(1) - b1) * *z_new) - y;
}

// Any base optimizer's update u.
struct ScheduleFree : contract::schedule_free {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[out::y] = ScheduleFreeStep<col>(c, x[in::y], x[in::z], x[in::u], &y[out::z]);
  }
};

// Base SGD: u = -lr * (g + wd * y).
struct ScheduleFreeSgd : contract::schedule_free_sgd {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc u = -c[col::lr] * PlusNonzero(x[in::g], c[col::wd], x[in::y]);
    y[out::y] = ScheduleFreeStep<col>(c, x[in::y], x[in::z], u, &y[out::z]);
  }
};

// Base RMS-scaled step (optax.scale_by_rms, eps outside the root, bias-corrected):
// v' = b2 v + (1 - b2) g^2, u = -lr * (g / (sqrt(v' / bc2) + eps) + wd * y).
struct ScheduleFreeAdamW : contract::schedule_free_adamw {
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc g = x[in::g];
    y[out::v] = c[col::b2] * x[in::v] + (Acc(1) - c[col::b2]) * (g * g);
    const Acc u = -c[col::lr] * PlusNonzero(g / (Sqrt(y[out::v] / c[col::bc2]) + c[col::eps]), c[col::wd], x[in::y]);
    y[out::y] = ScheduleFreeStep<col>(c, x[in::y], x[in::z], u, &y[out::z]);
  }
};

}  // namespace fromax::functors
