// CUDA FFI handlers: the same three targets as cpp/handlers.cc, registered for platform "CUDA".
//
// Per call: the host builds the tensor table (device pointers, lengths, dtypes, chunk list) from
// the operand metadata, copies it into FFI scratch memory with one cudaMemcpyAsync on the call's
// stream (never a host synchronisation), and launches a constant number of kernels. The handlers
// are not marked command-buffer (CUDA graph) compatible: the table is built on the host per call.
#include <cuda_runtime.h>

#include <cstdint>
#include <new>
#include <optional>
#include <vector>

#include "calls.h"
#include "launch.cuh"
#include "upload.cuh"
#include "fromage.h"
#include "kernels.cuh"
#include "table.h"
#include "xla/ffi/api/ffi.h"

namespace fromax::cuda {
namespace {

namespace ffi = xla::ffi;

// The device-side plan of one call, in one scratch allocation:
// [entries | chunks | partials (3 doubles per chunk) | coefficients (2 Acc per entry)].
struct DevicePlan {
  Entry* entries = nullptr;
  ChunkRef* chunks = nullptr;
  double* partials = nullptr;
  void* coeffs = nullptr;
  int64_t num_entries = 0, num_chunks = 0;
};

ffi::Error Upload(const Table& table, size_t acc_size, cudaStream_t stream, ffi::ScratchAllocator& scratch,
                  DevicePlan* plan) {
  const int64_t n = table.size();
  const int64_t num_chunks = CountChunks(table.lengths);
  DeviceTable<Entry> device;
  auto make_entry = [&](int64_t t, int32_t first, int32_t num) {
    return Entry{table.x[t], table.y[t], table.out[t], table.lengths[t], int32_t(table.tx[t]), int32_t(table.ty[t]), first, num};
  };
  if (ffi::Error e = UploadTable(table.lengths, {size_t(num_chunks) * 3 * sizeof(double), size_t(n) * 2 * acc_size}, stream,
                                 scratch, make_entry, &device);
      e.failure())
    return e;
  *plan = DevicePlan{device.entries, device.chunks, nullptr, nullptr, device.num_entries, device.num_chunks};
  if (!device.extra.empty()) {
    plan->partials = reinterpret_cast<double*>(device.extra[0]);
    plan->coeffs = device.extra[1];
  }
  return ffi::Error::Success();
}

template <class Acc, bool kWithB>
void LaunchReduce(const DevicePlan& plan, cudaStream_t stream) {
  if (plan.num_chunks == 0) return;
  fromax_reduce<Acc, kWithB><<<Blocks(plan.num_chunks), kThreads, 0, stream>>>(plan.entries, plan.chunks,
                                                                               plan.num_chunks, plan.partials);
}

template <class Acc, class Finish>
void LaunchFinalize(const DevicePlan& plan, cudaStream_t stream, Finish finish) {
  if (plan.num_entries == 0) return;
  const int64_t blocks = (plan.num_entries + kThreads - 1) / kThreads;
  fromax_finalize<Acc><<<blocks, kThreads, 0, stream>>>(plan.entries, plan.num_entries, plan.partials, finish);
}

template <class Acc>
void LaunchUpdate(const DevicePlan& plan, const Acc* coeffs, cudaStream_t stream) {
  if (plan.num_chunks == 0) return;
  fromax_update<Acc><<<Blocks(plan.num_chunks), kThreads, 0, stream>>>(plan.entries, plan.chunks, plan.num_chunks,
                                                                      coeffs);
}

// ---- finish functors -------------------------------------------------------------------------------
template <class Acc>
struct WriteSums {  // fromax_sums: the (n, width) output
  Acc* out;
  int width;
  __device__ void operator()(int64_t t, Acc aa, Acc bb, Acc ab) const {
    out[t * width] = aa;
    if (width == 3) {
      out[t * width + 1] = bb;
      out[t * width + 2] = ab;
    }
  }
};

template <class Acc>
struct FromageFinish {  // fromax_fromage: coefficients from the shared functor, hyperparameters read on the device
  const Acc* lr;
  const Acc* p_bound;
  const Acc* init_norms;
  bool delta;
  Acc* coeffs;
  __device__ void operator()(int64_t t, Acc ww, Acc gg, Acc wg) const {
    const FromageCoefficients<Acc> f{*lr, *p_bound, init_norms, delta};
    f(t, ww, gg, wg, &coeffs[2 * t], &coeffs[2 * t + 1]);
  }
};

// ---- handlers ----------------------------------------------------------------------------------------
ffi::Error SumsImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::RemainingArgs args,
                    ffi::Result<ffi::AnyBuffer> sums, int64_t segments, int64_t streams) {
  Table table;
  if (ffi::Error e = PrepareSums(args, *sums, segments, streams, &table); e.failure()) return e;
  const int width = streams == 2 ? 3 : 1;
  DevicePlan plan;
  const bool f64 = sums->element_type() == ffi::DataType::F64;
  if (ffi::Error e = Upload(table, f64 ? 8 : 4, stream, scratch, &plan); e.failure()) return e;
  // A size-0 tensor has no chunk: finalize writes its zero sums all the same.
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    streams == 2 ? LaunchReduce<Acc, true>(plan, stream) : LaunchReduce<Acc, false>(plan, stream);
    LaunchFinalize<Acc>(plan, stream, WriteSums<Acc>{static_cast<Acc*>(sums->untyped_data()), width});
  };
  f64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax_sums launch");
}

ffi::Error AxpbyImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer coeffs, CompileGuard,
                     ffi::RemainingArgs args, CompileGuardResult, ffi::RemainingRets rets, int64_t segments) {
  Table table;
  if (ffi::Error e = PrepareAxpby(coeffs, args, rets, segments, &table); e.failure()) return e;
  DevicePlan plan;
  const bool f64 = coeffs.element_type() == ffi::DataType::F64;
  if (ffi::Error e = Upload(table, f64 ? 8 : 4, stream, scratch, &plan); e.failure()) return e;
  if (f64) {
    LaunchUpdate<double>(plan, static_cast<const double*>(coeffs.untyped_data()), stream);
  } else {
    LaunchUpdate<float>(plan, static_cast<const float*>(coeffs.untyped_data()), stream);
  }
  return LastError("fromax_axpby launch");
}

ffi::Error FromageImpl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer lr, CompileGuard,
                       ffi::AnyBuffer p_bound, ffi::AnyBuffer init_norms, ffi::RemainingArgs args, CompileGuardResult,
                       ffi::RemainingRets rets, int64_t delta) {
  Table table;
  if (ffi::Error e = PrepareFromage(lr, p_bound, init_norms, args, rets, &table); e.failure()) return e;
  DevicePlan plan;
  const bool f64 = lr.element_type() == ffi::DataType::F64;
  if (ffi::Error e = Upload(table, f64 ? 8 : 4, stream, scratch, &plan); e.failure()) return e;
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    Acc* coeffs = static_cast<Acc*>(plan.coeffs);
    LaunchReduce<Acc, true>(plan, stream);
    LaunchFinalize<Acc>(plan, stream,
                        FromageFinish<Acc>{static_cast<const Acc*>(lr.untyped_data()),
                                           static_cast<const Acc*>(p_bound.untyped_data()),
                                           static_cast<const Acc*>(init_norms.untyped_data()), delta != 0, coeffs});
    LaunchUpdate<Acc>(plan, coeffs, stream);
  };
  f64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax_fromage launch");
}

}  // namespace
}  // namespace fromax::cuda

namespace ffi = xla::ffi;

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_sums_cuda, fromax::cuda::SumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<ffi::ScratchAllocator>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("segments")
                                  .Attr<int64_t>("streams"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_axpby_cuda, fromax::cuda::AxpbyImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<ffi::ScratchAllocator>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<fromax::CompileGuard>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .RemainingRets()
                                  .Attr<int64_t>("segments"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_fromage_cuda, fromax::cuda::FromageImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<ffi::ScratchAllocator>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<fromax::CompileGuard>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .RemainingRets()
                                  .Attr<int64_t>("delta"));
