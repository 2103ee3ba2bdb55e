// The operand contract of each FFI target, checked once for both engines (cpp/ and cuda/): the
// handlers differ only in how they run the table.
#pragma once

#include <cstdint>

#include "table.h"
#include "xla/ffi/api/ffi.h"

namespace fromax {

inline bool IsAcc(ffi::DataType d) { return d == ffi::DataType::F32 || d == ffi::DataType::F64; }

// The compile-time guard of every target that writes results over its operands (axpby, fromage,
// the elementwise updates): operand 0 repeated as operand 1, and a result 0 that XLA aliases to
// operand 0 and the kernel never writes. It exists only to keep XLA's fusion pass from an
// O(aliases x operands) walk per gradient (python/fromax/_primitives.py, _lower, says how).
using CompileGuard = ffi::AnyBuffer;
using CompileGuardResult = ffi::Result<ffi::AnyBuffer>;

// fromax_sums(a_0.., [b_0..]) -> sums (segments, n, 1 | 3) in the f32 / f64 accumulator dtype.
inline ffi::Error PrepareSums(const ffi::RemainingArgs& args, const ffi::AnyBuffer& sums, int64_t segments,
                              int64_t streams, Table* table) {
  if (!IsAcc(sums.element_type())) return Invalid("sums must be f32 or f64");
  if (streams != 1 && streams != 2) return Invalid("streams must be 1 or 2");
  if (ffi::Error e = BuildTable(args, streams == 2, nullptr, segments, sums.element_type(), table); e.failure())
    return e;
  if (int64_t(sums.element_count()) != table->size() * (streams == 2 ? 3 : 1)) return Invalid("sums has the wrong shape");
  return ffi::Error::Success();
}

// fromax_axpby(coeffs (segments, n, 2), guard, x_0.., y_0..) -> guard', x_0'.. (out_t = c[t,0] x_t + c[t,1] y_t).
inline ffi::Error PrepareAxpby(const ffi::AnyBuffer& coeffs, const ffi::RemainingArgs& args,
                               const ffi::RemainingRets& rets, int64_t segments, Table* table) {
  if (!IsAcc(coeffs.element_type())) return Invalid("coefficients must be f32 or f64");
  if (ffi::Error e = BuildTable(args, true, &rets, segments, coeffs.element_type(), table); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != 2 * table->size()) return Invalid("coefficients have the wrong shape");
  return ffi::Error::Success();
}

// fromax_fromage(lr, guard, p_bound, init_norms (n,), w_0.., g_0..) -> guard', w_0'.. (W_new, or W_new - W).
inline ffi::Error PrepareFromage(const ffi::AnyBuffer& lr, const ffi::AnyBuffer& p_bound,
                                 const ffi::AnyBuffer& init_norms, const ffi::RemainingArgs& args,
                                 const ffi::RemainingRets& rets, Table* table) {
  const ffi::DataType acc = lr.element_type();
  if (!IsAcc(acc) || p_bound.element_type() != acc || init_norms.element_type() != acc)
    return Invalid("lr, p_bound and init_norms must share the f32 or f64 accumulator dtype");
  if (lr.element_count() != 1 || p_bound.element_count() != 1) return Invalid("lr and p_bound must be scalars");
  if (ffi::Error e = BuildTable(args, true, &rets, 1, acc, table); e.failure()) return e;
  if (int64_t(init_norms.element_count()) != table->size()) return Invalid("init_norms must hold one norm per leaf");
  return ffi::Error::Success();
}

}  // namespace fromax
