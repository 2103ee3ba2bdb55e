// Python module `fromax._fromax_cpu`: hands the FFI handler symbols to Python as PyCapsules, which
// fromax/_ffi.py registers with jax.ffi.register_ffi_target(platform="cpu").
#include <nanobind/nanobind.h>

#include "contract_export.h"
#include "functors/list.h"
#include "xla/ffi/api/c_api.h"

namespace nb = nanobind;

extern "C" {
#define FROMAX_DECLARE(name, F, ...) XLA_FFI_Error* fromax_##name##_cpu(XLA_FFI_CallFrame*);
FROMAX_FUNCTORS(FROMAX_DECLARE, FROMAX_DECLARE, FROMAX_DECLARE)
#undef FROMAX_DECLARE
const char* fromax_cpu_isa();  // family_handlers.cc
}

template <class Fn>
nb::capsule Capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

NB_MODULE(_fromax_cpu, m) {
  m.def("targets", [] {
    nb::dict d;
#define FROMAX_EXPORT(name, F, ...) d["fromax_" #name] = Capsule(fromax_##name##_cpu);
    FROMAX_FUNCTORS(FROMAX_EXPORT, FROMAX_EXPORT, FROMAX_EXPORT)
#undef FROMAX_EXPORT
    return d;
  });
  m.def("functors", &fromax::CompiledContract);
  // The instruction set the elementwise engine's loops run with here (cpp/elementwise.h, HostIsa).
  m.def("cpu_isa", [] { return fromax_cpu_isa(); });
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
}
