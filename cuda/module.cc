// Python module `fromax._fromax_cuda`: the CUDA handler symbols as PyCapsules, registered by
// fromax/_ffi.py for platform "CUDA" when JAX runs on an NVIDIA GPU.
#include <nanobind/nanobind.h>

#include "contract_export.h"
#include "functors/list.h"
#include "xla/ffi/api/c_api.h"

namespace nb = nanobind;

extern "C" {
#define FROMAX_DECLARE(name, F, ...) XLA_FFI_Error* fromax_##name##_cuda(XLA_FFI_CallFrame*);
FROMAX_FUNCTORS(FROMAX_DECLARE, FROMAX_DECLARE, FROMAX_DECLARE)
#undef FROMAX_DECLARE
}

NB_MODULE(_fromax_cuda, m) {
  m.def("targets", [] {
    nb::dict d;
#define FROMAX_EXPORT(name, F, ...) d["fromax_" #name] = nb::capsule(reinterpret_cast<void*>(fromax_##name##_cuda));
    FROMAX_FUNCTORS(FROMAX_EXPORT, FROMAX_EXPORT, FROMAX_EXPORT)
#undef FROMAX_EXPORT
    return d;
  });
  m.def("functors", &fromax::CompiledContract);
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
}
