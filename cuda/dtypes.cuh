// Device element types and their conversion to the accumulator type (f32 for 16-bit storage).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "xla/ffi/api/ffi.h"

namespace fromax::cuda {

template <class Acc> __device__ __forceinline__ Acc Load(float v) { return Acc(v); }
template <class Acc> __device__ __forceinline__ Acc Load(double v) { return Acc(v); }
template <class Acc> __device__ __forceinline__ Acc Load(__nv_bfloat16 v) { return Acc(__bfloat162float(v)); }
template <class Acc> __device__ __forceinline__ Acc Load(__half v) { return Acc(__half2float(v)); }

template <class T> __device__ __forceinline__ T Store(float v);
template <class T> __device__ __forceinline__ T Store(double v);
template <> __device__ __forceinline__ float Store<float>(float v) { return v; }
template <> __device__ __forceinline__ double Store<double>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 Store<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half Store<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ float Store<float>(double v) { return float(v); }
template <> __device__ __forceinline__ double Store<double>(double v) { return v; }
// Reachable only for pairs the host rejects (16-bit storage in an f64 group); defined so that
// every dtype pair the dispatcher names compiles.
template <> __device__ __forceinline__ __nv_bfloat16 Store<__nv_bfloat16>(double v) { return __double2bfloat16(v); }
template <> __device__ __forceinline__ __half Store<__half>(double v) { return __double2half(v); }

template <class T>
struct Tag {
  using type = T;
};

// Calls fn(Tag<T>) for an XLA element type (the host admits only these four).
template <class Fn>
__device__ __forceinline__ void VisitType(int32_t dtype, const Fn& fn) {
  switch (static_cast<xla::ffi::DataType>(dtype)) {
    case xla::ffi::DataType::F32: fn(Tag<float>{}); break;
    case xla::ffi::DataType::F64: fn(Tag<double>{}); break;
    case xla::ffi::DataType::BF16: fn(Tag<__nv_bfloat16>{}); break;
    default: fn(Tag<__half>{}); break;
  }
}

}  // namespace fromax::cuda
