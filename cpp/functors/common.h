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

// An update functor whose result 0 is the new parameter itself (kAbsolute = true), not its
// increment: the fused step stores it as it is instead of adding the parameter to it.
template <class F, class = void>
struct IsAbsolute : std::false_type {};
template <class F>
struct IsAbsolute<F, std::void_t<decltype(F::kAbsolute)>> : std::bool_constant<F::kAbsolute> {};

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
template <class Acc>
FROMAX_FN Acc Abs(Acc x) {
  return Select(x < Acc(0), -x, x);
}
template <class Acc>
FROMAX_FN Acc Max(Acc a, Acc b) {
  return Select(a > b, a, b);
}

}  // namespace fromax::functors
