// Python module `fromax._fromax_cuda`: the CUDA handler symbols as PyCapsules, registered by
// fromax/_ffi.py for platform "CUDA" when JAX runs on an NVIDIA GPU. Built a second time against
// cuda/emulation as `fromax._fromax_cuda_emulated`, whose handlers run the same kernels on CPU
// threads and are registered for the CPU platform when FROMAX_EMULATE_CUDA=1 (tests).
#include <nanobind/nanobind.h>

#include "contract_export.h"
#include "functors/list.h"
#include "xla/ffi/api/c_api.h"

#if defined(FROMAX_CUDA_EMULATION)
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "emulation/grid.h"
#include "emulation/probes.h"
#define FROMAX_CUDA_MODULE _fromax_cuda_emulated
#else
#define FROMAX_CUDA_MODULE _fromax_cuda
#endif

namespace nb = nanobind;

extern "C" {
#define FROMAX_DECLARE(name, F, ...) XLA_FFI_Error* fromax_##name##_cuda(XLA_FFI_CallFrame*);
FROMAX_FUNCTORS(FROMAX_DECLARE, FROMAX_DECLARE, FROMAX_DECLARE)
#undef FROMAX_DECLARE
}

NB_MODULE(FROMAX_CUDA_MODULE, m) {
  m.def("targets", [] {
    nb::dict d;
#define FROMAX_EXPORT(name, F, ...) d["fromax_" #name] = nb::capsule(reinterpret_cast<void*>(fromax_##name##_cuda));
    FROMAX_FUNCTORS(FROMAX_EXPORT, FROMAX_EXPORT, FROMAX_EXPORT)
#undef FROMAX_EXPORT
    return d;
  });
  m.def("functors", &fromax::CompiledContract);
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
#if defined(FROMAX_CUDA_EMULATION)
  m.def("launch_count", &fromax::emulation::LaunchCount, "Kernel launches (emulated grids) since the process started.");
  m.def("probe", [](const std::string& name, int64_t blocks, int64_t threads) {
    fromax::emulation::ProbeResult r = fromax::emulation::RunProbe(name, blocks, threads);
    return nb::make_tuple(r.error, r.data);
  });
#endif
}
