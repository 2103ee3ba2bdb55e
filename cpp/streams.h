// The tensor table of one elementwise-engine call (host side; shared by the CPU and CUDA engines):
// kIn lists of n operand tensors (stream k of leaf i is operand k * n + i) and kOut lists of n
// results, all of leaf i's arrays with one element count; cut into `segments` equal parts each (a
// vmapped call holds `segments` models per leaf). Entry t = s * n + i is segment s of leaf i.
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

struct StreamTable {
  int64_t n_in = 0, n_out = 0;
  std::vector<int64_t> lengths;              // per entry
  std::vector<const char*> in;               // entry t, stream k: in[t * n_in + k]
  std::vector<ffi::DataType> in_type;
  std::vector<char*> out;                    // entry t, result j: out[t * n_out + j]
  std::vector<ffi::DataType> out_type;
  int64_t size() const { return int64_t(lengths.size()); }
};

// Every array of a leaf must be a float whose accumulator is `acc` (f32 for f32/bf16/f16, f64 for
// f64) and have the leaf's element count. rets == nullptr: a reduction (no tensor results).
inline ffi::Error BuildStreams(const ffi::RemainingArgs& remaining_args, int64_t n_in,
                               const ffi::RemainingRets* remaining_rets, int64_t n_out, int64_t segments,
                               ffi::DataType acc, StreamTable* table) {
  const RawArgs args(remaining_args);
  if (segments < 1) return Invalid("segments must be >= 1");
  if (args.size() % size_t(n_in) != 0) return Invalid("operand count is not a multiple of the stream count");
  const int64_t n = int64_t(args.size()) / n_in;
  std::optional<RawRets> rets;
  if (remaining_rets != nullptr) {
    rets.emplace(*remaining_rets);
    if (int64_t(rets->size()) != n * n_out) return Invalid("result count does not match leaves x outputs");
  }
  const int64_t entries = n * segments;
  table->n_in = n_in;
  table->n_out = rets ? n_out : 0;
  table->lengths.assign(size_t(entries), 0);
  table->in.assign(size_t(entries * n_in), nullptr);
  table->in_type.assign(size_t(entries * n_in), ffi::DataType::F32);
  table->out.assign(size_t(entries * table->n_out), nullptr);
  table->out_type.assign(size_t(entries * table->n_out), ffi::DataType::F32);
  auto check = [&](const XLA_FFI_Buffer* b, int64_t i, int64_t count, const char* what) -> ffi::Error {
    if (b == nullptr) return Invalid(Leaf(i) + what + " is not a buffer");
    const auto d = ffi::DataType(b->dtype);
    if (!IsFloat(d) || AccOf(d) != acc) return Invalid(Leaf(i) + what + " has a dtype outside this accumulator group");
    if (ElementCount(b) != count) return Invalid(Leaf(i) + what + " differs in size from the leaf's first stream");
    return ffi::Error::Success();
  };
  for (int64_t i = 0; i < n; ++i) {
    const XLA_FFI_Buffer* first = args.buffer(size_t(i));
    if (first == nullptr) return Invalid(Leaf(i) + "operand is not a buffer");
    const int64_t count = ElementCount(first);
    if (count % segments != 0) return Invalid(Leaf(i) + "size not divisible by segments");
    const int64_t seg_len = count / segments;
    for (int64_t k = 0; k < n_in; ++k) {
      const XLA_FFI_Buffer* b = args.buffer(size_t(k * n + i));
      if (ffi::Error e = check(b, i, count, "an operand stream"); e.failure()) return e;
      const auto d = ffi::DataType(b->dtype);
      for (int64_t s = 0; s < segments; ++s) {
        const int64_t t = s * n + i;
        table->in[size_t(t * n_in + k)] = static_cast<const char*>(b->data) + s * seg_len * int64_t(ffi::ByteWidth(d));
        table->in_type[size_t(t * n_in + k)] = d;
      }
    }
    for (int64_t j = 0; j < table->n_out; ++j) {
      const XLA_FFI_Buffer* b = rets->buffer(size_t(j * n + i));
      if (ffi::Error e = check(b, i, count, "a result"); e.failure()) return e;
      const auto d = ffi::DataType(b->dtype);
      for (int64_t s = 0; s < segments; ++s) {
        const int64_t t = s * n + i;
        table->out[size_t(t * n_out + j)] = static_cast<char*>(b->data) + s * seg_len * int64_t(ffi::ByteWidth(d));
        table->out_type[size_t(t * n_out + j)] = d;
      }
    }
    for (int64_t s = 0; s < segments; ++s) table->lengths[size_t(s * n + i)] = seg_len;
  }
  return ffi::Error::Success();
}

}  // namespace fromax
