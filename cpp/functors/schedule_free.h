// Schedule-Free (Defazio et al. 2024): the iterate y interpolates between the base optimizer's
// sequence z and its running average x. python/fromax/_functors.py is the same math.
#pragma once

#include "common.h"

namespace fromax::functors {

// Columns 0..1: b1, ck. z' = z + u; x = (1 - ck) (y - (1 - b1) z) / b1 + ck z';
// y' = b1 x + (1 - b1) z'. Returns dp = y' - y and writes z'.
template <class Acc>
FROMAX_FN Acc ScheduleFreeStep(const Acc* c, Acc y, Acc z, Acc u, Acc* z_new) {
  const Acc b1 = c[0], ck = c[1];
  *z_new = z + u;
  const Acc x_prev = (y - (Acc(1) - b1) * z) / b1;
  const Acc x = (Acc(1) - ck) * x_prev + ck * *z_new;
  return (b1 * x + (Acc(1) - b1) * *z_new) - y;
}

// Any base optimizer's update u. in: y, z, u. out: dp, z'. c: b1, ck.
struct ScheduleFree {
  static constexpr int kIn = 3, kOut = 2, kParam = 0, kCoeffs = 2;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    y[0] = ScheduleFreeStep(c, x[0], x[1], x[2], &y[1]);
  }
};

// Base SGD: u = -lr * (g + wd * y). in: g, y, z. out: dp, z'. c: b1, ck, lr, wd.
struct ScheduleFreeSgd {
  static constexpr int kIn = 3, kOut = 2, kParam = 1, kCoeffs = 4;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc u = -c[2] * (x[0] + c[3] * x[1]);
    y[0] = ScheduleFreeStep(c, x[1], x[2], u, &y[1]);
  }
};

// Base RMS-scaled step (optax.scale_by_rms, eps outside the root, bias-corrected):
// v' = b2 v + (1 - b2) g^2, u = -lr * (g / (sqrt(v' / bc2) + eps) + wd * y).
// in: g, y, z, v. out: dp, z', v'. c: b1, ck, lr, wd, b2, eps, bc2.
struct ScheduleFreeAdamW {
  static constexpr int kIn = 4, kOut = 3, kParam = 1, kCoeffs = 7;
  template <class Acc>
  FROMAX_FN static void Update(const Acc* c, const Acc* x, Acc* y) {
    const Acc g = x[0];
    y[2] = c[4] * x[3] + (Acc(1) - c[4]) * (g * g);
    const Acc u = -c[2] * (g / (Sqrt(y[2] / c[6]) + c[5]) + c[3] * x[1]);
    y[0] = ScheduleFreeStep(c, x[1], x[2], u, &y[1]);
  }
};

}  // namespace fromax::functors
