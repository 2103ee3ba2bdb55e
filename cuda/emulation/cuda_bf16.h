// Emulated <cuda_bf16.h> (see cuda_runtime.h): __nv_bfloat16 and the conversions the CUDA engine
// uses, with the CPU engine's conversions (cpp/dtypes.h), which round to nearest even as the
// device does.
#pragma once

#include <cstdint>

#include "cuda_runtime.h"
#include "dtypes.h"

struct __nv_bfloat16 {
  uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 v) { return fromax::ToFloat(fromax::bf16{v.bits}); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {fromax::ToBf16(f).bits}; }

// Reached only for dtype pairs the host rejects (cuda/dtypes.cuh); through f32, so it may round
// twice where the device rounds once.
inline __nv_bfloat16 __double2bfloat16(double d) { return __float2bfloat16_rn(float(d)); }
