// The operand contract of each FFI target, checked once for both engines (cpp/ and cuda/): the
// handlers differ only in how they run the table.
#pragma once

#include <cstdint>

#include "streams.h"
#include "xla/ffi/api/ffi.h"

namespace fromax {

inline bool IsAcc(ffi::DataType d) { return d == ffi::DataType::F32 || d == ffi::DataType::F64; }

// The compile-time guard of every target that writes results over its operands (every update
// and fused target): one small array passed as operands 0 and 1, before the coefficients, and a
// result 0 that XLA aliases to operand 0 and the kernel never writes. It keeps XLA's fusion pass
// from an O(aliases x operands) walk per gradient, and on the CPU it carries the call's cost hint
// (python/fromax/_primitives.py, _lower and _guard, say how).
using CompileGuard = ffi::AnyBuffer;
using CompileGuardResult = ffi::Result<ffi::AnyBuffer>;

// The checked stream table of a call: coefficient rows (segments, n, n_coeffs) in the f32 / f64
// accumulator dtype; n_in lists of n operand tensors and (rets) n_out lists of n results.
inline ffi::Error CallTable(const ffi::AnyBuffer& coeffs, int64_t n_coeffs, const ffi::RemainingArgs& args, int64_t n_in,
                            const ffi::RemainingRets* rets, int64_t n_out, int64_t segments, StreamTable* tb) {
  const ffi::DataType acc = coeffs.element_type();
  if (!IsAcc(acc)) return Invalid("coefficients must be f32 or f64");
  if (ffi::Error e = BuildStreams(args, n_in, rets, n_out, segments, acc, tb); e.failure()) return e;
  if (int64_t(coeffs.element_count()) != tb->size() * n_coeffs) return Invalid("coefficients have the wrong shape");
  return ffi::Error::Success();
}

// The per-tensor sums a reduce or fused call writes: (segments, n, n_sums) in the coefficients' dtype.
inline ffi::Error CheckSums(const ffi::AnyBuffer& sums, const ffi::AnyBuffer& coeffs, const StreamTable& tb, int64_t n_sums) {
  if (sums.element_type() != coeffs.element_type()) return Invalid("coefficients and sums must share the f32 or f64 accumulator dtype");
  if (int64_t(sums.element_count()) != tb.size() * n_sums) return Invalid("sums have the wrong shape");
  return ffi::Error::Success();
}

}  // namespace fromax
