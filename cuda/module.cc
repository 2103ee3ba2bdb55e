// Python module `fromax._fromax_cuda`: the CUDA handler symbols as PyCapsules, registered by
// fromax/_ffi.py for platform "CUDA" when JAX runs on an NVIDIA GPU.
#include <nanobind/nanobind.h>

#include "xla/ffi/api/c_api.h"

namespace nb = nanobind;

extern "C" {
XLA_FFI_Error* fromax_sums_cuda(XLA_FFI_CallFrame*);
XLA_FFI_Error* fromax_axpby_cuda(XLA_FFI_CallFrame*);
XLA_FFI_Error* fromax_fromage_cuda(XLA_FFI_CallFrame*);
}

NB_MODULE(_fromax_cuda, m) {
  m.def("targets", [] {
    nb::dict d;
    d["fromax_sums"] = nb::capsule(reinterpret_cast<void*>(fromax_sums_cuda));
    d["fromax_axpby"] = nb::capsule(reinterpret_cast<void*>(fromax_axpby_cuda));
    d["fromax_fromage"] = nb::capsule(reinterpret_cast<void*>(fromax_fromage_cuda));
    return d;
  });
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
}
