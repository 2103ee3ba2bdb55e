// CUDA FFI handlers of the elementwise engine: one target per functor of cpp/functors/list.h (reduce,
// update or per-tensor fused), with
// the operands and results of the CPU targets (cpp/family_handlers.cc), registered for "CUDA".
//
// Per call: the host builds the stream table (cpp/streams.h: device pointers, dtypes, lengths) and
// the chunk list, copies them into FFI scratch memory with one cudaMemcpyAsync on the call's
// stream, and launches a constant number of kernels (cuda/elementwise.cuh). The coefficient rows
// stay in device memory, read by the kernels: no host synchronisation, nothing recompiles.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
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

// Entry t of the device table: the stream table's pointers and dtypes, and its chunks.
template <int kIn, int kOut>
struct StreamEntryMaker {
  const StreamTable* tb;
  StreamEntry<kIn, kOut> operator()(int64_t t, int32_t first, int32_t num) const {
    StreamEntry<kIn, kOut> e{};
    for (int k = 0; k < kIn; ++k) {
      e.in[k] = tb->in[t * kIn + k];
      e.in_type[k] = int32_t(tb->in_type[t * kIn + k]);
    }
    for (int j = 0; j < kOut; ++j) {
      e.out[j] = tb->out[t * kOut + j];
      e.out_type[j] = int32_t(tb->out_type[t * kOut + j]);
    }
    e.length = tb->lengths[t];
    e.first_chunk = first;
    e.num_chunks = num;
    // The engine's fast path (cuda/elementwise.cuh): one storage type for every stream, 16-byte
    // aligned pointers for whole-group vector loads and stores.
    e.uniform = kIn > 0 ? e.in_type[0] : -1;
    bool aligned = true;
    for (int k = 0; k < kIn; ++k) {
      if (e.in_type[k] != e.uniform) e.uniform = -1;
      aligned = aligned && (reinterpret_cast<uintptr_t>(e.in[k]) & 15u) == 0;
    }
    for (int j = 0; j < kOut; ++j) {
      if (e.out_type[j] != e.uniform) e.uniform = -1;
      aligned = aligned && (reinterpret_cast<uintptr_t>(e.out[j]) & 15u) == 0;
    }
    e.aligned = aligned ? 1 : 0;
    return e;
  }
};

// The device table of one call: stream entries, chunks and (reductions) kSums doubles per chunk.
template <int kIn, int kOut>
ffi::Error UploadStreams(const StreamTable& tb, int kSums, cudaStream_t stream, Scratch& scratch,
                         DeviceTable<StreamEntry<kIn, kOut>>* table) {
  const int64_t num_chunks = CountChunks(tb.lengths);
  return UploadTable(tb.lengths, {size_t(num_chunks) * kSums * sizeof(double)}, stream, scratch,
                     StreamEntryMaker<kIn, kOut>{&tb}, table);
}

template <class F>
ffi::Error ReduceImpl(cudaStream_t stream, Scratch scratch, ffi::AnyBuffer coeffs,
                      ffi::RemainingArgs args, ffi::Result<ffi::AnyBuffer> sums, int64_t segments) {
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, F::kIn, nullptr, 0, segments, &tb); e.failure()) return e;
  if (ffi::Error e = CheckSums(*sums, coeffs, tb, F::kSums); e.failure()) return e;
  const ffi::DataType acc = coeffs.element_type();
  DeviceTable<StreamEntry<F::kIn, 0>> plan;
  if (ffi::Error e = UploadStreams(tb, F::kSums, stream, scratch, &plan); e.failure()) return e;
  double* partials = plan.extra.empty() ? nullptr : reinterpret_cast<double*>(plan.extra[0]);
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    const Acc* c = static_cast<const Acc*>(coeffs.untyped_data());
    using Entry = StreamEntry<F::kIn, 0>;
    if (plan.num_chunks > 0)
      Launch(fromax_family_reduce<F, Acc, Entry>, Blocks(plan.num_chunks), kThreads, stream, plan.entries,
             plan.chunks, int64_t{0}, plan.num_chunks, c, int(F::kCoeffs), partials);
    if (plan.num_entries > 0)
      Launch(fromax_family_finalize<F, Acc, Entry>, (plan.num_entries + kThreads - 1) / kThreads, kThreads, stream,
             plan.entries, plan.num_entries, partials, static_cast<Acc*>(sums->untyped_data()));
  };
  acc == ffi::DataType::F64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax elementwise reduce launch");
}

// Chunks [first, plan.num_chunks) of the list.
template <class U, class Acc, class Entry>
void LaunchUpdate(const DeviceTable<Entry>& plan, int64_t first, const Acc* rows, bool delta, cudaStream_t stream) {
  if (plan.num_chunks == first) return;
  const int64_t blocks = Blocks(plan.num_chunks - first);
  if (delta) {
    Launch(fromax_family_update<U, Acc, true, Entry>, blocks, kThreads, stream, plan.entries, plan.chunks, first,
           plan.num_chunks, rows);
  } else {
    Launch(fromax_family_update<U, Acc, false, Entry>, blocks, kThreads, stream, plan.entries, plan.chunks, first,
           plan.num_chunks, rows);
  }
}

template <class F>
ffi::Error UpdateImpl(cudaStream_t stream, Scratch scratch, CompileGuard, CompileGuard,
                      ffi::AnyBuffer coeffs, ffi::RemainingArgs args, CompileGuardResult, ffi::RemainingRets rets,
                      int64_t segments, int64_t delta) {
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, F::kIn, &rets, F::kOut, segments, &tb); e.failure()) return e;
  const ffi::DataType acc = coeffs.element_type();
  DeviceTable<StreamEntry<F::kIn, F::kOut>> plan;
  if (ffi::Error e = UploadStreams(tb, 0, stream, scratch, &plan); e.failure()) return e;
  auto run = [&](auto acc_tag) {
    using Acc = typename decltype(acc_tag)::type;
    LaunchUpdate<F>(plan, 0, static_cast<const Acc*>(coeffs.untyped_data()), delta != 0, stream);
  };
  acc == ffi::DataType::F64 ? run(Tag<double>{}) : run(Tag<float>{});
  return LastError("fromax elementwise update launch");
}

// A per-tensor fused functor: one launch for the tensors of one chunk (a block each: sums, Finish
// and update), and reduce, finish and update launches for the others (several chunks, or none).
// The sums of every tensor are written out; the update rows of the others live in scratch memory.
template <class F>
ffi::Error FusedImpl(cudaStream_t stream, Scratch scratch, CompileGuard, CompileGuard,
                     ffi::AnyBuffer coeffs, ffi::RemainingArgs args, CompileGuardResult,
                     ffi::Result<ffi::AnyBuffer> sums, ffi::RemainingRets rets, int64_t segments, int64_t delta) {
  using R = typename F::Reduce;
  using U = typename F::Update;
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, U::kIn, &rets, U::kOut, segments, &tb); e.failure()) return e;
  if (ffi::Error e = CheckSums(*sums, coeffs, tb, R::kSums); e.failure()) return e;
  const ffi::DataType acc = coeffs.element_type();
  const size_t partial_bytes = size_t(CountChunks(tb.lengths)) * R::kSums * sizeof(double);
  const size_t row_bytes = size_t(tb.size()) * U::kCoeffs * ffi::ByteWidth(acc);
  DeviceTable<StreamEntry<U::kIn, U::kOut>> plan;
  if (ffi::Error e = UploadTable(tb.lengths, {partial_bytes, row_bytes}, stream, scratch, StreamEntryMaker<U::kIn, U::kOut>{&tb}, &plan);
      e.failure())
    return e;
  const int64_t singles = plan.num_single_chunks;  // one chunk, one tensor, one block each
  auto run = [&](auto acc_tag, auto delta_tag) {
    using Acc = typename decltype(acc_tag)::type;
    constexpr bool kDelta = decltype(delta_tag)::value;
    const Acc* c = static_cast<const Acc*>(coeffs.untyped_data());
    Acc* s = static_cast<Acc*>(sums->untyped_data());
    using Entry = StreamEntry<U::kIn, U::kOut>;
    if (singles > 0)
      Launch(fromax_family_fused<F, Acc, kDelta, Entry>, Blocks(singles), kThreads, stream, plan.entries, plan.chunks,
             singles, c, s);
    if (plan.num_entries == singles) return;
    double* partials = reinterpret_cast<double*>(plan.extra[0]);
    Acc* rows = reinterpret_cast<Acc*>(plan.extra[1]);
    if (plan.num_chunks > singles)
      Launch(fromax_family_reduce<R, Acc, Entry>, Blocks(plan.num_chunks - singles), kThreads, stream, plan.entries,
             plan.chunks, singles, plan.num_chunks, c, int(F::kCoeffs), partials);
    Launch(fromax_family_finish<F, Acc, Entry>, (plan.num_entries + kThreads - 1) / kThreads, kThreads, stream,
           plan.entries, plan.num_entries, partials, c, s, rows);
    LaunchUpdate<U>(plan, singles, static_cast<const Acc*>(rows), kDelta, stream);
  };
  auto with_delta = [&](auto acc_tag) {
    delta != 0 ? run(acc_tag, std::true_type{}) : run(acc_tag, std::false_type{});
  };
  acc == ffi::DataType::F64 ? with_delta(Tag<double>{}) : with_delta(Tag<float>{});
  return LastError("fromax fused launch");
}

}  // namespace
}  // namespace fromax::cuda

namespace ffi = xla::ffi;

#define FROMAX_DEFINE_REDUCE_CUDA(name, F, ...)                                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cuda, fromax::cuda::ReduceImpl<fromax::functors::F>, \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<fromax::cuda::StreamContext>()                             \
                                    .Ctx<fromax::cuda::Scratch>()                                   \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .Attr<int64_t>("segments"));
// Update and fused targets: the compile guard (twice), the coefficients and the streams in; the guard,
// (fused only: SUMS, the per-tensor sums) and the results out.
#define FROMAX_BIND_IN_PLACE_CUDA(SUMS) \
  ffi::Ffi::Bind().Ctx<fromax::cuda::StreamContext>().Ctx<fromax::cuda::Scratch>() \
      .Arg<fromax::CompileGuard>().Arg<fromax::CompileGuard>().Arg<ffi::AnyBuffer>().RemainingArgs() \
      .Ret<ffi::AnyBuffer>() SUMS.RemainingRets().Attr<int64_t>("segments").Attr<int64_t>("delta")
#define FROMAX_DEFINE_UPDATE_CUDA(name, F, ...) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cuda, fromax::cuda::UpdateImpl<fromax::functors::F>, FROMAX_BIND_IN_PLACE_CUDA());
#define FROMAX_DEFINE_FUSED_CUDA(name, F, ...) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cuda, fromax::cuda::FusedImpl<fromax::functors::F>, \
                                FROMAX_BIND_IN_PLACE_CUDA(.Ret<ffi::AnyBuffer>()));

FROMAX_FUNCTORS(FROMAX_DEFINE_REDUCE_CUDA, FROMAX_DEFINE_UPDATE_CUDA, FROMAX_DEFINE_FUSED_CUDA)
