// CUDA FFI handlers of the elementwise engine: one target per functor of cpp/functors/list.h, with
// the operands and results of the CPU targets (cpp/family_handlers.cc), registered for "CUDA".
//
// Per call: the host builds the stream table (cpp/streams.h: device pointers, dtypes, lengths) and
// the chunk list, copies them into FFI scratch memory with one cudaMemcpyAsync on the call's
// stream, and launches a constant number of kernels (cuda/elementwise.cuh). The coefficient rows
// stay in device memory, read by the kernels: no host synchronisation, nothing recompiles.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "calls.h"
#include "elementwise.cuh"
#include "functors/list.h"
#include "launch.cuh"
#include "upload.cuh"
#include "streams.h"
#include "xla/ffi/api/ffi.h"

namespace fromax::cuda {
namespace {

namespace ffi = xla::ffi;

// The device table of one call: stream entries, chunks and (reductions) kSums doubles per chunk.
template <int kIn, int kOut>
ffi::Error UploadStreams(const StreamTable& tb, int kSums, cudaStream_t stream, ffi::ScratchAllocator& scratch,
                         DeviceTable<StreamEntry<kIn, kOut>>* table) {
  const int64_t num_chunks = CountChunks(tb.lengths);
  auto make_entry = [&](int64_t t, int32_t first, int32_t num) {
    StreamEntry<kIn, kOut> e{};
    for (int k = 0; k < kIn; ++k) {
      e.in[k] = tb.in[t * kIn + k];
      e.in_type[k] = int32_t(tb.in_type[t * kIn + k]);
    }
    for (int j = 0; j < kOut; ++j) {
      e.out[j] = tb.out[t * kOut + j];
      e.out_type[j] = int32_t(tb.out_type[t * kOut + j]);
    }
    e.length = tb.lengths[t];
    e.first_chunk = first;
    e.num_chunks = num;
    return e;
  };
  return UploadTable(tb.lengths, {size_t(num_chunks) * kSums * sizeof(double)}, stream, scratch, make_entry, table);
}

template <class F>
ffi::Error ReduceImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer coeffs,
                      ffi::RemainingArgs args, ffi::Result<ffi::AnyBuffer> sums, int64_t segments) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc) || sums->element_type() != acc) return Invalid("coefficients and sums must share the f32 or f64 accumulator dtype");
  StreamTable tb;
  if (ffi::Error e = BuildStreams(args, F::kIn, nullptr, 0, segments, acc, &tb); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != tb.size() * F::kCoeffs) return Invalid("coefficients have the wrong shape");
  if (int64_t(sums->element_count()) != tb.size() * F::kSums) return Invalid("sums have the wrong shape");
  DeviceTable<StreamEntry<F::kIn, 0>> plan;
  if (ffi::Error e = UploadStreams(tb, F::kSums, stream, scratch, &plan); e.failure()) return e;
  double* partials = plan.extra.empty() ? nullptr : reinterpret_cast<double*>(plan.extra[0]);
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    const Acc* c = static_cast<const Acc*>(coeffs.untyped_data());
    if (plan.num_chunks > 0)
      fromax_family_reduce<F, Acc><<<Blocks(plan.num_chunks), kThreads, 0, stream>>>(plan.entries, plan.chunks,
                                                                                     plan.num_chunks, c, partials);
    if (plan.num_entries > 0)
      fromax_family_finalize<F, Acc><<<(plan.num_entries + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
          plan.entries, plan.num_entries, partials, static_cast<Acc*>(sums->untyped_data()));
  };
  acc == ffi::DataType::F64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax elementwise reduce launch");
}

template <class F>
ffi::Error UpdateImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer coeffs, CompileGuard,
                      ffi::RemainingArgs args, CompileGuardResult, ffi::RemainingRets rets, int64_t segments,
                      int64_t delta) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc)) return Invalid("coefficients must be f32 or f64");
  StreamTable tb;
  if (ffi::Error e = BuildStreams(args, F::kIn, &rets, F::kOut, segments, acc, &tb); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != tb.size() * F::kCoeffs) return Invalid("coefficients have the wrong shape");
  DeviceTable<StreamEntry<F::kIn, F::kOut>> plan;
  if (ffi::Error e = UploadStreams(tb, 0, stream, scratch, &plan); e.failure()) return e;
  if (plan.num_chunks == 0) return ffi::Error::Success();
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    const Acc* c = static_cast<const Acc*>(coeffs.untyped_data());
    const int64_t blocks = Blocks(plan.num_chunks);
    if (delta != 0) {
      fromax_family_update<F, Acc, true><<<blocks, kThreads, 0, stream>>>(plan.entries, plan.chunks, plan.num_chunks, c);
    } else {
      fromax_family_update<F, Acc, false><<<blocks, kThreads, 0, stream>>>(plan.entries, plan.chunks, plan.num_chunks, c);
    }
  };
  acc == ffi::DataType::F64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax elementwise update launch");
}

}  // namespace
}  // namespace fromax::cuda

namespace ffi = xla::ffi;

#define FROMAX_DEFINE_REDUCE_CUDA(name, F)                                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cuda, fromax::cuda::ReduceImpl<fromax::functors::F>, \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::PlatformStream<cudaStream_t>>()                       \
                                    .Ctx<ffi::ScratchAllocator>()                                   \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .Attr<int64_t>("segments"));
#define FROMAX_DEFINE_UPDATE_CUDA(name, F)                                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cuda, fromax::cuda::UpdateImpl<fromax::functors::F>, \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::PlatformStream<cudaStream_t>>()                       \
                                    .Ctx<ffi::ScratchAllocator>()                                   \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .Arg<fromax::CompileGuard>()                                    \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .RemainingRets()                                                \
                                    .Attr<int64_t>("segments")                                      \
                                    .Attr<int64_t>("delta"));

FROMAX_FUNCTORS(FROMAX_DEFINE_REDUCE_CUDA, FROMAX_DEFINE_UPDATE_CUDA)
