// Element types the engine streams, and their conversion to the accumulator type.
//
// bf16 and f16 are loaded into f32 (accumulation is never done in 16 bits) and stored back with
// round-to-nearest-even, which is what XLA does for the same convert, so kernel and reference agree.
#pragma once

#include <cstdint>
#include <cstring>

namespace fromax {

struct bf16 {
  uint16_t bits;
};
using f16 = _Float16;  // GCC/Clang on x86-64 and aarch64; conversions round to nearest even.

inline float ToFloat(bf16 v) {
  uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline bf16 ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x0040u)};  // keep NaN quiet
  uint32_t round_bias = 0x7fffu + ((u >> 16) & 1u);                                // nearest even
  return bf16{uint16_t((u + round_bias) >> 16)};
}

// Load<Acc>(x): the value of one stored element in the accumulator type.
template <class Acc> inline Acc Load(float x) { return Acc(x); }
template <class Acc> inline Acc Load(double x) { return Acc(x); }
template <class Acc> inline Acc Load(bf16 x) { return Acc(ToFloat(x)); }
template <class Acc> inline Acc Load(f16 x) { return Acc(float(x)); }

// Store<T>(v): round an accumulator value to the stored type.
template <class T> inline T Store(float v);
template <class T> inline T Store(double v);
template <> inline float Store<float>(float v) { return v; }
template <> inline double Store<double>(float v) { return v; }
template <> inline bf16 Store<bf16>(float v) { return ToBf16(v); }
template <> inline f16 Store<f16>(float v) { return f16(v); }
template <> inline float Store<float>(double v) { return float(v); }
template <> inline double Store<double>(double v) { return v; }

}  // namespace fromax

namespace fromax {
// Only reachable for combinations the handlers reject (16-bit storage in an f64 group); defined so
// that every dtype pair the dispatcher names compiles.
template <> inline bf16 Store<bf16>(double v) { return ToBf16(float(v)); }
template <> inline f16 Store<f16>(double v) { return f16(float(v)); }
}  // namespace fromax
