// Fromage per-tensor coefficients: W_new = a * W + b * g. One source of truth for the C++ kernels;
// python/fromax/reference.py::fromage_coefficients is the same math, line for line.
//
//   r      = |W| / |g|   if |W| > 0 and |g| > 0, else 1          (paper; no epsilon)
//   root   = sqrt(1 + lr^2)
//   a, b   = 1 / root, -lr * r / root
//   p_bound (only where |W0| > 0): |W_new|^2 = a^2 |W|^2 + 2ab <W,g> + b^2 |g|^2 (closed form, no
//            extra pass); if |W_new| > cap = p_bound * |W0|, scale a and b by s = cap / |W_new|.
//   delta  (optax contract, W_new - W): a - 1 = s * (1/root - 1) + (s - 1), with
//            1/root - 1 = -lr^2 / (root * (1 + root)) to avoid cancelling 1/root against 1.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FROMAX_HOST_DEVICE __host__ __device__
#else
#define FROMAX_HOST_DEVICE
#endif

namespace fromax {

template <class Acc>
struct FromageCoefficients {
  Acc lr;
  Acc p_bound;
  const Acc* init_norms;  // |W0| per tensor; 0 leaves the tensor uncapped
  bool delta;

  FROMAX_HOST_DEVICE void operator()(int64_t t, Acc ww, Acc gg, Acc wg, Acc* a, Acc* b) const {
    using std::sqrt;  // on the device: CUDA's sqrt(float) / sqrt(double) overloads
    const Acc w_norm = sqrt(ww), g_norm = sqrt(gg);
    const Acc ratio = (w_norm > Acc(0) && g_norm > Acc(0)) ? w_norm / g_norm : Acc(1);
    const Acc root = sqrt(Acc(1) + lr * lr);
    Acc ca = Acc(1) / root;
    Acc cb = -(lr * ratio) / root;
    Acc scale = Acc(1);
    const Acc w0 = init_norms[t];
    if (w0 > Acc(0)) {
      const Acc new_sq = ca * ca * ww + Acc(2) * ca * cb * wg + cb * cb * gg;
      const Acc new_norm = sqrt(new_sq > Acc(0) ? new_sq : Acc(0));
      const Acc cap = p_bound * w0;
      if (new_norm > cap) scale = cap / new_norm;
    }
    cb = cb * scale;
    if (delta) {
      ca = scale * (-(lr * lr) / (root * (Acc(1) + root))) + (scale - Acc(1));
    } else {
      ca = ca * scale;
    }
    *a = ca;
    *b = cb;
  }
};

}  // namespace fromax
