// FFI handlers: each target is the engine plus one small functor.
//
//   fromax_sums     reduce only:  per-tensor (|a|^2) or (|a|^2, |b|^2, <a,b>)  -> (segments, n, 1|3)
//   fromax_axpby    update only:  out_i = c[t,0] * x_i + c[t,1] * y_i           (out aliased to x)
//   fromax_fromage  fused Fromage step: reduce, per-tensor coefficients, update in one call
//
// The reduce and update targets are the two separable phases (sharded runs add per-shard partial
// sums between them); the fused target does both with small tensors visited once, in cache.
// Hyperparameters arrive as 0-d operands, never attributes, so changing them never recompiles.
#include <cstdint>
#include <vector>

#include "engine.h"
#include "calls.h"
#include "fromage.h"
#include "table.h"
#include "visit.h"
#include "xla/ffi/api/ffi.h"

namespace fromax {
namespace {

template <class Acc>
Acc ReadScalar(const ffi::AnyBuffer& b) {
  return static_cast<const Acc*>(b.untyped_data())[0];
}

template <class Acc, bool kWithB>
Sums ReduceEntry(const Table& table, int64_t t, int64_t begin, int64_t end) {
  Sums s;
  VisitTypes(table, t, [&](auto tx, auto ty) {
    using TX = typename decltype(tx)::type;
    using TY = typename decltype(ty)::type;
    s = SumRange<Acc, kWithB>(reinterpret_cast<const TX*>(table.x[t]), reinterpret_cast<const TY*>(table.y[t]),
                              begin, end);
  });
  return s;
}

template <class Acc>
void UpdateEntry(const Table& table, int64_t t, Acc ca, Acc cb, int64_t begin, int64_t end) {
  VisitTypes(table, t, [&](auto tx, auto ty) {
    using TX = typename decltype(tx)::type;
    using TY = typename decltype(ty)::type;
    AxpbyRange<Acc>(reinterpret_cast<TX*>(table.out[t]), reinterpret_cast<const TX*>(table.x[t]),
                    reinterpret_cast<const TY*>(table.y[t]), ca, cb, begin, end);
  });
}

// ---- fromax_sums ---------------------------------------------------------------------------------
template <class Acc, bool kWithB>
void RunSums(ffi::ThreadPool* pool, const Table& table, Acc* out) {
  constexpr int kWidth = kWithB ? 3 : 1;
  RunEngine</*kReduce=*/true, /*kUpdate=*/false>(
      pool, table.lengths,
      [&](int64_t t, int64_t b, int64_t e) { return ReduceEntry<Acc, kWithB>(table, t, b, e); },
      [&](int64_t t, const Sums& s) {
        out[t * kWidth] = Acc(s.aa);
        if constexpr (kWithB) {
          out[t * kWidth + 1] = Acc(s.bb);
          out[t * kWidth + 2] = Acc(s.ab);
        }
      },
      [](int64_t, int64_t, int64_t) {});
}

ffi::Error SumsImpl(ffi::ThreadPool pool, ffi::RemainingArgs args, ffi::Result<ffi::AnyBuffer> sums,
                    int64_t segments, int64_t streams) {
  Table table;
  if (ffi::Error e = PrepareSums(args, *sums, segments, streams, &table); e.failure()) return e;
  void* out = sums->untyped_data();
  if (sums->element_type() == ffi::DataType::F64) {
    streams == 2 ? RunSums<double, true>(&pool, table, static_cast<double*>(out))
                 : RunSums<double, false>(&pool, table, static_cast<double*>(out));
  } else {
    streams == 2 ? RunSums<float, true>(&pool, table, static_cast<float*>(out))
                 : RunSums<float, false>(&pool, table, static_cast<float*>(out));
  }
  return ffi::Error::Success();
}

// ---- fromax_axpby --------------------------------------------------------------------------------
template <class Acc>
void RunAxpby(ffi::ThreadPool* pool, const Table& table, const Acc* coeffs) {
  RunEngine</*kReduce=*/false, /*kUpdate=*/true>(
      pool, table.lengths, [](int64_t, int64_t, int64_t) { return Sums{}; }, [](int64_t, const Sums&) {},
      [&](int64_t t, int64_t b, int64_t e) { UpdateEntry<Acc>(table, t, coeffs[2 * t], coeffs[2 * t + 1], b, e); });
}

ffi::Error AxpbyImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, CompileGuard, ffi::RemainingArgs args,
                     CompileGuardResult, ffi::RemainingRets rets, int64_t segments) {
  Table table;
  if (ffi::Error e = PrepareAxpby(coeffs, args, rets, segments, &table); e.failure()) return e;
  if (coeffs.element_type() == ffi::DataType::F64) {
    RunAxpby<double>(&pool, table, static_cast<const double*>(coeffs.untyped_data()));
  } else {
    RunAxpby<float>(&pool, table, static_cast<const float*>(coeffs.untyped_data()));
  }
  return ffi::Error::Success();
}

// ---- fromax_fromage ------------------------------------------------------------------------------
template <class Acc>
void RunFromage(ffi::ThreadPool* pool, const Table& table, const FromageCoefficients<Acc>& coefficients) {
  std::vector<Acc> ca(table.size()), cb(table.size());
  RunEngine</*kReduce=*/true, /*kUpdate=*/true>(
      pool, table.lengths,
      [&](int64_t t, int64_t b, int64_t e) { return ReduceEntry<Acc, true>(table, t, b, e); },
      [&](int64_t t, const Sums& s) { coefficients(t, Acc(s.aa), Acc(s.bb), Acc(s.ab), &ca[t], &cb[t]); },
      [&](int64_t t, int64_t b, int64_t e) { UpdateEntry<Acc>(table, t, ca[t], cb[t], b, e); });
}

ffi::Error FromageImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, CompileGuard, ffi::AnyBuffer p_bound,
                       ffi::AnyBuffer init_norms, ffi::RemainingArgs args, CompileGuardResult, ffi::RemainingRets rets,
                       int64_t delta) {
  Table table;
  if (ffi::Error e = PrepareFromage(lr, p_bound, init_norms, args, rets, &table); e.failure()) return e;
  if (lr.element_type() == ffi::DataType::F64) {
    FromageCoefficients<double> f{ReadScalar<double>(lr), ReadScalar<double>(p_bound),
                                  static_cast<const double*>(init_norms.untyped_data()), delta != 0};
    RunFromage<double>(&pool, table, f);
  } else {
    FromageCoefficients<float> f{ReadScalar<float>(lr), ReadScalar<float>(p_bound),
                                 static_cast<const float*>(init_norms.untyped_data()), delta != 0};
    RunFromage<float>(&pool, table, f);
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace fromax

namespace ffi = xla::ffi;

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_sums_cpu, fromax::SumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("segments")
                                  .Attr<int64_t>("streams"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_axpby_cpu, fromax::AxpbyImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<fromax::CompileGuard>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .RemainingRets()
                                  .Attr<int64_t>("segments"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_fromage_cpu, fromax::FromageImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<fromax::CompileGuard>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()
                                  .Ret<ffi::AnyBuffer>()
                                  .RemainingRets()
                                  .Attr<int64_t>("delta"));
