// Dispatch from XLA element types to the CPU engine's storage types.
#pragma once

#include "dtypes.h"
#include "table.h"

namespace fromax {

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
