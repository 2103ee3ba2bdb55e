// The tensor table of one FFI call (host side; shared by the CPU and CUDA engines): the variadic
// operands (x_0..x_{n-1}, then y_0..y_{n-1} when the functor reads a second stream) and results, cut into `segments` equal parts each (a vmapped call
// holds `segments` models per leaf). Entry t = s * n + i is segment s of leaf i.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace fromax {

namespace ffi = xla::ffi;

inline ffi::Error Invalid(const std::string& what) {
  return ffi::Error(ffi::ErrorCode::kInvalidArgument, "fromax: " + what);
}

inline bool IsFloat(ffi::DataType d) {
  return d == ffi::DataType::F32 || d == ffi::DataType::F64 || d == ffi::DataType::BF16 ||
         d == ffi::DataType::F16;
}

// The accumulator of a stream: f64 for f64, f32 for f32/bf16/f16.
inline ffi::DataType AccOf(ffi::DataType d) {
  return d == ffi::DataType::F64 ? ffi::DataType::F64 : ffi::DataType::F32;
}

struct Table {
  std::vector<int64_t> lengths;
  std::vector<const char*> x, y;
  std::vector<char*> out;
  std::vector<ffi::DataType> tx, ty;
  int64_t size() const { return int64_t(lengths.size()); }
};

// Raw access to the variadic operands and results. `args.get<AnyBuffer>(i)` builds a diagnostic
// engine and an ErrorOr per call, which costs ~0.1 us per operand: noticeable with 6000 operands
// (2000 leaves). The C structs are the stable FFI ABI, so read them directly.
struct RawArgs : ffi::RemainingArgs {
  explicit RawArgs(const ffi::RemainingArgs& a) : ffi::RemainingArgs(a) {}
  const XLA_FFI_Buffer* buffer(size_t i) const {
    const size_t k = offset() + i;
    return args()->types[k] == XLA_FFI_ArgType_BUFFER ? static_cast<const XLA_FFI_Buffer*>(args()->args[k]) : nullptr;
  }
};
struct RawRets : ffi::RemainingRets {
  explicit RawRets(const ffi::RemainingRets& r) : ffi::RemainingRets(r) {}
  const XLA_FFI_Buffer* buffer(size_t i) const {
    const size_t k = offset() + i;
    return rets()->types[k] == XLA_FFI_RetType_BUFFER ? static_cast<const XLA_FFI_Buffer*>(rets()->rets[k]) : nullptr;
  }
};

inline int64_t ElementCount(const XLA_FFI_Buffer* b) {
  int64_t n = 1;
  for (int64_t d = 0; d < b->rank; ++d) n *= b->dims[d];
  return n;
}

inline std::string Leaf(int64_t i) { return "leaf " + std::to_string(i) + ": "; }

// `args` are the call's variadic operands only. rets == nullptr: no outputs (a reduction).
// with_y == false: one stream.
inline ffi::Error BuildTable(const ffi::RemainingArgs& remaining_args, bool with_y,
                             const ffi::RemainingRets* remaining_rets, int64_t segments, ffi::DataType acc,
                             Table* table) {
  const RawArgs args(remaining_args);
  const std::optional<RawRets> rets =
      remaining_rets ? std::optional<RawRets>(RawRets(*remaining_rets)) : std::nullopt;
  const size_t streams = with_y ? 2 : 1;
  if (segments < 1) return Invalid("segments must be >= 1");
  if (args.size() % streams != 0) return Invalid("operand count does not match the number of streams");
  const int64_t n = int64_t(args.size() / streams);
  if (rets && int64_t(rets->size()) != n) return Invalid("result count != leaf count");
  const size_t entries = size_t(n * segments);
  table->lengths.resize(entries);
  table->x.resize(entries);
  table->y.resize(entries);
  table->out.resize(entries);
  table->tx.resize(entries);
  table->ty.resize(entries);
  for (int64_t i = 0; i < n; ++i) {
    const XLA_FFI_Buffer* x = args.buffer(i);
    if (x == nullptr) return Invalid(Leaf(i) + "operand is not a buffer");
    const auto xt = ffi::DataType(x->dtype);
    if (!IsFloat(xt) || AccOf(xt) != acc) return Invalid(Leaf(i) + "unsupported dtype for this accumulator");
    const int64_t count = ElementCount(x);
    if (count % segments != 0) return Invalid(Leaf(i) + "size not divisible by segments");
    const XLA_FFI_Buffer* y = x;
    if (with_y) {
      y = args.buffer(n + i);
      if (y == nullptr || !IsFloat(ffi::DataType(y->dtype))) return Invalid(Leaf(i) + "second stream is not a float buffer");
      if (ElementCount(y) != count) return Invalid(Leaf(i) + "size mismatch between the two streams");
    }
    char* out = nullptr;
    if (rets) {
      const XLA_FFI_Buffer* o = rets->buffer(i);
      if (o == nullptr || o->dtype != x->dtype || ElementCount(o) != count)
        return Invalid(Leaf(i) + "result dtype or size differs from its operand");
      out = static_cast<char*>(o->data);
    }
    const auto yt = ffi::DataType(y->dtype);
    const int64_t seg_len = count / segments;
    const int64_t x_width = int64_t(ffi::ByteWidth(xt)), y_width = int64_t(ffi::ByteWidth(yt));
    for (int64_t s = 0; s < segments; ++s) {
      const size_t t = size_t(s * n + i);
      table->lengths[t] = seg_len;
      table->tx[t] = xt;
      table->ty[t] = yt;
      table->x[t] = static_cast<const char*>(x->data) + s * seg_len * x_width;
      table->y[t] = static_cast<const char*>(y->data) + s * seg_len * y_width;
      table->out[t] = out ? out + s * seg_len * x_width : nullptr;
    }
  }
  return ffi::Error::Success();
}

}  // namespace fromax
