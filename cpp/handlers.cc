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

bool IsAcc(ffi::DataType d) { return d == ffi::DataType::F32 || d == ffi::DataType::F64; }

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
  const ffi::DataType acc = sums->element_type();
  if (!IsAcc(acc)) return Invalid("sums must be f32 or f64");
  if (streams != 1 && streams != 2) return Invalid("streams must be 1 or 2");
  Table table;
  if (ffi::Error e = BuildTable(args, streams == 2, nullptr, segments, acc, &table); e.failure()) return e;
  const int64_t width = streams == 2 ? 3 : 1;
  if (int64_t(sums->element_count()) != table.size() * width) return Invalid("sums has the wrong shape");
  void* out = sums->untyped_data();
  if (acc == ffi::DataType::F64) {
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

ffi::Error AxpbyImpl(ffi::ThreadPool pool, ffi::AnyBuffer coeffs, ffi::RemainingArgs args,
                     ffi::RemainingRets rets, int64_t segments) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc)) return Invalid("coefficients must be f32 or f64");
  Table table;
  if (ffi::Error e = BuildTable(args, true, &rets, segments, acc, &table); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != 2 * table.size()) return Invalid("coefficients have the wrong shape");
  if (acc == ffi::DataType::F64) {
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

ffi::Error FromageImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer p_bound, ffi::AnyBuffer init_norms,
                       ffi::RemainingArgs args, ffi::RemainingRets rets, int64_t delta) {
  const ffi::DataType acc = lr.element_type();
  if (!IsAcc(acc) || p_bound.element_type() != acc || init_norms.element_type() != acc)
    return Invalid("lr, p_bound and init_norms must share the f32 or f64 accumulator dtype");
  if (lr.element_count() != 1 || p_bound.element_count() != 1) return Invalid("lr and p_bound must be scalars");
  Table table;
  if (ffi::Error e = BuildTable(args, true, &rets, 1, acc, &table); e.failure()) return e;
  if (int64_t(init_norms.element_count()) != table.size()) return Invalid("init_norms must hold one norm per leaf");
  if (acc == ffi::DataType::F64) {
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
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<int64_t>("segments"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(fromax_fromage_cpu, fromax::FromageImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<int64_t>("delta"));
