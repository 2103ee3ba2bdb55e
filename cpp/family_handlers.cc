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

template <class F>
ffi::Error ReduceImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, ffi::RemainingArgs args,
                      ffi::Result<ffi::AnyBuffer> sums, int64_t segments) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc) || sums->element_type() != acc) return Invalid("coefficients and sums must share the f32 or f64 accumulator dtype");
  StreamTable tb;
  if (ffi::Error e = BuildStreams(args, F::kIn, nullptr, 0, segments, acc, &tb); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != tb.size() * F::kCoeffs) return Invalid("coefficients have the wrong shape");
  if (int64_t(sums->element_count()) != tb.size() * F::kSums) return Invalid("sums have the wrong shape");
  if (acc == ffi::DataType::F64) {
    RunReduce<F, double>(&pool, tb, static_cast<const double*>(coeffs.untyped_data()), static_cast<double*>(sums->untyped_data()));
  } else {
    RunReduce<F, float>(&pool, tb, static_cast<const float*>(coeffs.untyped_data()), static_cast<float*>(sums->untyped_data()));
  }
  return ffi::Error::Success();
}

// The checked stream table of an update or fused call (U: the functor writing its results).
template <class U>
ffi::Error UpdateTable(const ffi::AnyBuffer& coeffs, int64_t n_coeffs, const ffi::RemainingArgs& args,
                       const ffi::RemainingRets& rets, int64_t segments, StreamTable* tb) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc)) return Invalid("coefficients must be f32 or f64");
  if (ffi::Error e = BuildStreams(args, U::kIn, &rets, U::kOut, segments, acc, tb); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != tb->size() * n_coeffs) return Invalid("coefficients have the wrong shape");
  return ffi::Error::Success();
}

template <class F>
ffi::Error UpdateImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, CompileGuard, ffi::RemainingArgs args,
                      CompileGuardResult, ffi::RemainingRets rets, int64_t segments, int64_t delta) {
  StreamTable tb;
  if (ffi::Error e = UpdateTable<F>(coeffs, F::kCoeffs, args, rets, segments, &tb); e.failure()) return e;
  auto run = [&](auto* c) {
    using Acc = std::remove_const_t<std::remove_pointer_t<decltype(c)>>;
    delta != 0 ? RunUpdate<F, Acc, true>(&pool, tb, c) : RunUpdate<F, Acc, false>(&pool, tb, c);
  };
  if (coeffs.element_type() == ffi::DataType::F64) {
    run(static_cast<const double*>(coeffs.untyped_data()));
  } else {
    run(static_cast<const float*>(coeffs.untyped_data()));
  }
  return ffi::Error::Success();
}

// A per-tensor fused functor: an update's operands and results, and the tensors' sums first.
template <class F>
ffi::Error FusedImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, CompileGuard, ffi::RemainingArgs args,
                     CompileGuardResult, ffi::Result<ffi::AnyBuffer> sums, ffi::RemainingRets rets, int64_t segments,
                     int64_t delta) {
  StreamTable tb;
  if (ffi::Error e = UpdateTable<typename F::Update>(coeffs, F::kCoeffs, args, rets, segments, &tb); e.failure()) return e;
  if (sums->element_type() != coeffs.element_type() || int64_t(sums->element_count()) != tb.size() * F::Reduce::kSums)
    return Invalid("sums have the wrong shape or dtype");
  auto run = [&](auto* c) {
    using Acc = std::remove_const_t<std::remove_pointer_t<decltype(c)>>;
    Acc* s = static_cast<Acc*>(sums->untyped_data());
    delta != 0 ? RunFused<F, Acc, true>(&pool, tb, c, s) : RunFused<F, Acc, false>(&pool, tb, c, s);
  };
  if (coeffs.element_type() == ffi::DataType::F64) {
    run(static_cast<const double*>(coeffs.untyped_data()));
  } else {
    run(static_cast<const float*>(coeffs.untyped_data()));
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace fromax

namespace ffi = xla::ffi;

#define FROMAX_DEFINE_REDUCE(name, F)                                                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::ReduceImpl<fromax::functors::F>,       \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::ThreadPool>()                                         \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .Attr<int64_t>("segments"));
#define FROMAX_DEFINE_UPDATE(name, F)                                                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::UpdateImpl<fromax::functors::F>,       \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::ThreadPool>()                                         \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .Arg<fromax::CompileGuard>()                                    \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .RemainingRets()                                                \
                                    .Attr<int64_t>("segments")                                      \
                                    .Attr<int64_t>("delta"));

#define FROMAX_DEFINE_FUSED(name, F)                                                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_##name##_cpu, fromax::FusedImpl<fromax::functors::F>,        \
                                ffi::Ffi::Bind()                                                    \
                                    .Ctx<ffi::ThreadPool>()                                         \
                                    .Arg<ffi::AnyBuffer>()                                          \
                                    .Arg<fromax::CompileGuard>()                                    \
                                    .RemainingArgs()                                                \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .Ret<ffi::AnyBuffer>()                                          \
                                    .RemainingRets()                                                \
                                    .Attr<int64_t>("segments")                                      \
                                    .Attr<int64_t>("delta"));

FROMAX_FUNCTORS(FROMAX_DEFINE_REDUCE, FROMAX_DEFINE_UPDATE, FROMAX_DEFINE_FUSED)

extern "C" const char* fromax_cpu_isa() { return fromax::IsaName(fromax::HostIsa()); }
