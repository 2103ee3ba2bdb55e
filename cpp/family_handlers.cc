// FFI handlers of the elementwise engine: one target per functor (cpp/functors/list.h), each the
// engine (elementwise.h) plus that functor.
//
//   fromax_<reduce>(coeffs (S, n, kCoeffs), streams...; segments)        -> sums (S, n, kSums)
//   fromax_<update>(coeffs, guard, streams...; segments, delta) -> guard', kOut lists of n tensors
//   fromax_<fused>(coeffs, guard, streams...; segments, delta)  -> guard', sums (S, n, kSums),
//                                                                  kOut lists of n tensors
//
// coeffs carries every hyperparameter as data (never an attribute), so changing one never
// recompiles; delta = 1 returns the parameter increment (the optax contract), 0 the new parameter.
#include <cstdint>
#include <type_traits>

#include "calls.h"
#include "elementwise.h"
#include "functors/list.h"
#include "streams.h"
#include "xla/ffi/api/ffi.h"

namespace fromax {
namespace {

// Calls run(coeffs as const Acc*) with Acc the call's accumulator type (checked by CallTable).
template <class Run>
void WithAcc(const ffi::AnyBuffer& coeffs, const Run& run) {
  if (coeffs.element_type() == ffi::DataType::F64) {
    run(static_cast<const double*>(coeffs.untyped_data()));
  } else {
    run(static_cast<const float*>(coeffs.untyped_data()));
  }
}

template <class F>
ffi::Error ReduceImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, ffi::RemainingArgs args,
                      ffi::Result<ffi::AnyBuffer> sums, int64_t segments) {
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, F::kIn, nullptr, 0, segments, &tb); e.failure()) return e;
  if (ffi::Error e = CheckSums(*sums, coeffs, tb, F::kSums); e.failure()) return e;
  WithAcc(coeffs, [&](auto* c) {
    using Acc = std::remove_const_t<std::remove_pointer_t<decltype(c)>>;
    RunReduce<F, Acc>(&pool, tb, c, static_cast<Acc*>(sums->untyped_data()));
  });
  return ffi::Error::Success();
}

template <class F>
ffi::Error UpdateImpl(ffi::ThreadPool pool, CompileGuard, CompileGuard, ffi::AnyBuffer coeffs, ffi::RemainingArgs args,
                      CompileGuardResult, ffi::RemainingRets rets, int64_t segments, int64_t delta) {
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, F::kIn, &rets, F::kOut, segments, &tb); e.failure()) return e;
  WithAcc(coeffs, [&](auto* c) {
    using Acc = std::remove_const_t<std::remove_pointer_t<decltype(c)>>;
    delta != 0 ? RunUpdate<F, Acc, true>(&pool, tb, c) : RunUpdate<F, Acc, false>(&pool, tb, c);
  });
  return ffi::Error::Success();
}

// A per-tensor fused functor: an update's operands and results, and the tensors' sums first.
template <class F>
ffi::Error FusedImpl(ffi::ThreadPool pool, CompileGuard, CompileGuard, ffi::AnyBuffer coeffs, ffi::RemainingArgs args,
                     CompileGuardResult, ffi::Result<ffi::AnyBuffer> sums, ffi::RemainingRets rets, int64_t segments,
                     int64_t delta) {
  using U = typename F::Update;
  StreamTable tb;
  if (ffi::Error e = CallTable(coeffs, F::kCoeffs, args, U::kIn, &rets, U::kOut, segments, &tb); e.failure()) return e;
  if (ffi::Error e = CheckSums(*sums, coeffs, tb, F::Reduce::kSums); e.failure()) return e;
  WithAcc(coeffs, [&](auto* c) {
    using Acc = std::remove_const_t<std::remove_pointer_t<decltype(c)>>;
    Acc* s = static_cast<Acc*>(sums->untyped_data());
    delta != 0 ? RunFused<F, Acc, true>(&pool, tb, c, s) : RunFused<F, Acc, false>(&pool, tb, c, s);
  });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace fromax

namespace ffi = xla::ffi;

#define FROMAX_DEFINE_REDUCE(name, F, ...)                                                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::ReduceImpl<fromax::functors::F>,       \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::ThreadPool>()                                         \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .Attr<int64_t>("segments"));
// Update and fused targets: the compile guard (twice), the coefficients and the streams in; the guard,
// (fused only: SUMS, the per-tensor sums) and the results out.
#define FROMAX_BIND_IN_PLACE(SUMS) \
  ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<fromax::CompileGuard>().Arg<fromax::CompileGuard>().Arg<ffi::AnyBuffer>().RemainingArgs() \
      .Ret<ffi::AnyBuffer>() SUMS.RemainingRets().Attr<int64_t>("segments").Attr<int64_t>("delta")
#define FROMAX_DEFINE_UPDATE(name, F, ...) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::UpdateImpl<fromax::functors::F>, FROMAX_BIND_IN_PLACE());
#define FROMAX_DEFINE_FUSED(name, F, ...) \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::FusedImpl<fromax::functors::F>, \
                                FROMAX_BIND_IN_PLACE(.Ret<ffi::AnyBuffer>()));

FROMAX_FUNCTORS(FROMAX_DEFINE_REDUCE, FROMAX_DEFINE_UPDATE, FROMAX_DEFINE_FUSED)

extern "C" const char* fromax_cpu_isa() { return fromax::IsaName(fromax::HostIsa()); }
