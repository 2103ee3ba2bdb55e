// The operand contract of each FFI target, checked once for both engines (cpp/ and cuda/): the
// handlers differ only in how they run the table.
#pragma once

#include <cstdint>

#include "streams.h"
#include "xla/ffi/api/ffi.h"

namespace fromax {

inline bool IsAcc(ffi::DataType d) { return d == ffi::DataType::F32 || d == ffi::DataType::F64; }

// The compile-time guard of every target that writes results over its operands (every update
// and fused target): operand 0 repeated as operand 1, and a result 0 that XLA aliases to
// operand 0 and the kernel never writes. It exists only to keep XLA's fusion pass from an
// O(aliases x operands) walk per gradient (python/fromax/_primitives.py, _lower, says how).
using CompileGuard = ffi::AnyBuffer;
using CompileGuardResult = ffi::Result<ffi::AnyBuffer>;

}  // namespace fromax
