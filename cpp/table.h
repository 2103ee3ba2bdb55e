// The tensor table of one FFI call: the variadic operands (x_0..x_{n-1}, then y_0..y_{n-1} when the
// functor reads a second stream) and results, cut into `segments` equal parts each (a vmapped call
// holds `segments` models per leaf). Entry t = s * n + i is segment s of leaf i.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtypes.h"
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
  int64_t leaves = 0;
  std::vector<int64_t> lengths;
  std::vector<const char*> x, y;
  std::vector<char*> out;
  std::vector<ffi::DataType> tx, ty;
  int64_t size() const { return int64_t(lengths.size()); }
};

// `args` are the call's variadic operands only. rets == nullptr: no outputs (a reduction).
// with_y == false: one stream.
inline ffi::Error BuildTable(const ffi::RemainingArgs& args, bool with_y,
                             const ffi::RemainingRets* rets, int64_t segments, ffi::DataType acc,
                             Table* table) {
  const size_t streams = with_y ? 2 : 1;
  if (segments < 1) return Invalid("segments must be >= 1");
  if (args.size() % streams != 0)
    return Invalid("operand count does not match the number of streams");
  const int64_t n = int64_t(args.size() / streams);
  if (rets != nullptr && int64_t(rets->size()) != n) return Invalid("result count != leaf count");
  table->leaves = n;
  std::vector<int64_t> seg_len(n);
  std::vector<const char*> xb(n), yb(n);
  std::vector<char*> ob(n);
  std::vector<ffi::DataType> xt(n), yt(n);
  for (int64_t i = 0; i < n; ++i) {
    auto x = args.get<ffi::AnyBuffer>(i);
    if (!x.has_value()) return x.error();
    xt[i] = x->element_type();
    if (!IsFloat(xt[i]) || AccOf(xt[i]) != acc)
      return Invalid("leaf " + std::to_string(i) + ": unsupported dtype for this accumulator");
    const int64_t count = int64_t(x->element_count());
    if (count % segments != 0) return Invalid("leaf " + std::to_string(i) + ": size not divisible by segments");
    seg_len[i] = count / segments;
    xb[i] = static_cast<const char*>(x->untyped_data());
    yt[i] = xt[i];
    yb[i] = xb[i];
    if (with_y) {
      auto y = args.get<ffi::AnyBuffer>(n + i);
      if (!y.has_value()) return y.error();
      if (!IsFloat(y->element_type())) return Invalid("leaf " + std::to_string(i) + ": second stream is not float");
      if (int64_t(y->element_count()) != count) return Invalid("leaf " + std::to_string(i) + ": size mismatch");
      yt[i] = y->element_type();
      yb[i] = static_cast<const char*>(y->untyped_data());
    }
    ob[i] = nullptr;
    if (rets != nullptr) {
      auto o = rets->get<ffi::AnyBuffer>(i);
      if (!o.has_value()) return o.error();
      if ((*o)->element_type() != xt[i] || int64_t((*o)->element_count()) != count)
        return Invalid("result " + std::to_string(i) + ": dtype or size differs from its operand");
      ob[i] = static_cast<char*>((*o)->untyped_data());
    }
  }
  for (int64_t s = 0; s < segments; ++s) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = s * seg_len[i];
      table->lengths.push_back(seg_len[i]);
      table->tx.push_back(xt[i]);
      table->ty.push_back(yt[i]);
      table->x.push_back(xb[i] + off * int64_t(ffi::ByteWidth(xt[i])));
      table->y.push_back(yb[i] + off * int64_t(ffi::ByteWidth(yt[i])));
      table->out.push_back(ob[i] ? ob[i] + off * int64_t(ffi::ByteWidth(xt[i])) : nullptr);
    }
  }
  return ffi::Error::Success();
}

template <class T>
struct Tag {
  using type = T;
};

// Calls fn(Tag<TX>, Tag<TY>) for the storage types of table entry t.
template <class Fn>
void VisitTypes(const Table& table, int64_t t, const Fn& fn) {
  auto visit = [](ffi::DataType d, const auto& inner) {
    switch (d) {
      case ffi::DataType::F32: return inner(Tag<float>{});
      case ffi::DataType::F64: return inner(Tag<double>{});
      case ffi::DataType::BF16: return inner(Tag<bf16>{});
      default: return inner(Tag<f16>{});  // BuildTable admits only the four float types
    }
  };
  visit(table.tx[t], [&](auto tx) { visit(table.ty[t], [&](auto ty) { fn(tx, ty); }); });
}

}  // namespace fromax
