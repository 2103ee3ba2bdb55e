// Emulated <cuda_fp16.h> (see cuda_runtime.h): __half and the conversions the CUDA engine uses,
// through the compiler's _Float16, which rounds to nearest even as the device does.
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

struct __half {
  _Float16 value;
};

inline float __half2float(__half v) { return float(v.value); }
inline __half __float2half_rn(float f) { return {_Float16(f)}; }
inline __half __double2half(double d) { return {_Float16(d)}; }
