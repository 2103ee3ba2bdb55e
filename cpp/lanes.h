// Lanes<Acc>: kSumLanes accumulator values in one GCC vector, the type a reduce functor's Reduce
// runs on in ReduceRange (element_ranges.inc), so that a tensor's sums accumulate in registers, lane
// l taking elements l, l + kSumLanes, ... of each block, with no terms buffer in between.
//
// It supports exactly what the functors' reduce paths use: construction from a scalar (a
// broadcast: Acc(1), a coefficient), + - * /, unary -, comparisons giving a LaneMask, Select on
// one, and sqrt (found by argument-dependent lookup from functors::Sqrt). Each lane computes the
// IEEE operation the scalar code computes (contraction is off), so a sum has the same bits as the
// scalar loop's.
//
// Defined for no particular ISA and always inlined: element_ranges.inc's copies for wider ISAs inline
// it (and the functors) into their loops, where GCC lowers the vectors to that ISA's registers.
#pragma once

#include <cmath>
#include <cstdint>

namespace fromax {

inline constexpr int kSumLanes = 8;

#define FROMAX_LANES_FN inline __attribute__((always_inline))

// The GCC vector types (an attribute cannot apply to a template parameter, hence the specialisations).
template <class Acc>
struct LaneTypes;
template <>
struct LaneTypes<float> {
  typedef float V __attribute__((vector_size(kSumLanes * sizeof(float))));
  typedef int32_t M __attribute__((vector_size(kSumLanes * sizeof(float))));
};
template <>
struct LaneTypes<double> {
  typedef double V __attribute__((vector_size(kSumLanes * sizeof(double))));
  typedef int64_t M __attribute__((vector_size(kSumLanes * sizeof(double))));
};

template <class Acc>
struct LaneMask {
  typename LaneTypes<Acc>::M m;
};

template <class Acc>
struct Lanes {
  using V = typename LaneTypes<Acc>::V;
  V v;

  Lanes() = default;
  FROMAX_LANES_FN Lanes(Acc s) : v(V{} + s) {}  // implicit: a scalar in a lane expression broadcasts
  FROMAX_LANES_FN static Lanes Of(V x) {
    Lanes r;
    r.v = x;
    return r;
  }
  FROMAX_LANES_FN static Lanes Load(const Acc* p) {
    Lanes r;
    __builtin_memcpy(&r.v, p, sizeof(V));
    return r;
  }
  FROMAX_LANES_FN void Store(Acc* p) const { __builtin_memcpy(p, &v, sizeof(V)); }

  friend FROMAX_LANES_FN Lanes operator+(Lanes a, Lanes b) { return Of(a.v + b.v); }
  friend FROMAX_LANES_FN Lanes operator-(Lanes a, Lanes b) { return Of(a.v - b.v); }
  friend FROMAX_LANES_FN Lanes operator*(Lanes a, Lanes b) { return Of(a.v * b.v); }
  friend FROMAX_LANES_FN Lanes operator/(Lanes a, Lanes b) { return Of(a.v / b.v); }
  friend FROMAX_LANES_FN Lanes operator-(Lanes a) { return Of(-a.v); }
  FROMAX_LANES_FN Lanes& operator+=(Lanes b) { return v += b.v, *this; }

  // Comparisons as masks, never as bool: a functor that branches on a value fails to compile here
  // instead of silently testing one lane.
  friend FROMAX_LANES_FN LaneMask<Acc> operator<(Lanes a, Lanes b) { return {a.v < b.v}; }
  friend FROMAX_LANES_FN LaneMask<Acc> operator>(Lanes a, Lanes b) { return {a.v > b.v}; }
  friend FROMAX_LANES_FN LaneMask<Acc> operator!=(Lanes a, Lanes b) { return {a.v != b.v}; }
  friend FROMAX_LANES_FN Lanes Select(LaneMask<Acc> c, Lanes a, Lanes b) { return Of(c.m ? a.v : b.v); }

  // The lanes widened to double (exact): a norm's squares accumulate there.
  FROMAX_LANES_FN Lanes<double> Wide() const {
    return Lanes<double>::Of(__builtin_convertvector(v, typename LaneTypes<double>::V));
  }

  friend FROMAX_LANES_FN Lanes sqrt(Lanes a) {
    Lanes r;
#pragma GCC unroll 16
    for (int l = 0; l < kSumLanes; ++l) r.v[l] = std::sqrt(a.v[l]);  // GCC makes it one vector sqrt
    return r;
  }
};

#undef FROMAX_LANES_FN

}  // namespace fromax
