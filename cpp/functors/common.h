// What every functor header needs: its contract (contract.h), host/device qualifiers and the math
// they may use on both sides.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "contract.h"

#if defined(__CUDACC__)
#define FROMAX_FN __host__ __device__ __forceinline__
#else
#define FROMAX_FN inline __attribute__((always_inline))
#endif

namespace fromax::functors {

template <class Acc>
FROMAX_FN Acc Sqrt(Acc x) {
  using std::sqrt;  // on the device: CUDA's sqrt(float) / sqrt(double) overloads
  return sqrt(x);
}
// c ? a : b, written as a call so that a reduce path also runs on lanes of values (ReduceRange's
// Lanes<Acc>, where a comparison is a mask and Select a blend).
template <class Acc>
FROMAX_FN Acc Select(bool c, Acc a, Acc b) {
  return c ? a : b;
}
// x + d * p, or x itself where d = 0: never 0 * p, which is NaN for an infinite p. optax adds no
// weight decay where it is 0 or masked out, so there an infinite parameter stays infinite.
template <class Acc>
FROMAX_FN Acc PlusNonzero(Acc x, Acc d, Acc p) {
  return Select(d != Acc(0), x + d * p, x);
}
template <class Acc>
FROMAX_FN Acc Abs(Acc x) {
  return Select(x < Acc(0), -x, x);
}
template <class Acc>
FROMAX_FN Acc Max(Acc a, Acc b) {
  return Select(a > b, a, b);
}

}  // namespace fromax::functors
