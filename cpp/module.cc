// Python module `fromax._fromax_cpu`: hands the FFI handler symbols to Python as PyCapsules, which
// fromax/_ffi.py registers with jax.ffi.register_ffi_target(platform="cpu").
#include <nanobind/nanobind.h>

#include "functors/list.h"
#include "xla/ffi/api/c_api.h"

namespace nb = nanobind;

extern "C" {
#define FROMAX_DECLARE(name, F) XLA_FFI_Error* fromax_##name##_cpu(XLA_FFI_CallFrame*);
FROMAX_FUNCTORS(FROMAX_DECLARE, FROMAX_DECLARE, FROMAX_DECLARE)
#undef FROMAX_DECLARE
const char* fromax_cpu_isa();  // family_handlers.cc
}

template <class Fn>
nb::capsule Capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

// The operand contract of every functor as C++ declares it, for python/fromax/_functors.py to be
// checked against (tests/test_functors.py): (kind, streams in, sums or results, coefficients,
// parameter stream, absolute) and, for a fused functor, its reduce's and update's target names.
template <class F>
nb::tuple ReduceShape() {
  return nb::make_tuple("reduce", F::kIn, F::kSums, F::kCoeffs);
}
template <class F>
nb::tuple UpdateShape() {
  return nb::make_tuple("update", F::kIn, F::kOut, F::kCoeffs, F::kParam, fromax::functors::IsAbsolute<F>::value);
}
template <class F>
nb::tuple FusedShape() {
  using R = typename F::Reduce;
  using U = typename F::Update;
  return nb::make_tuple("fused", U::kIn, U::kOut, F::kCoeffs, ReduceShape<R>(), UpdateShape<U>());
}

NB_MODULE(_fromax_cpu, m) {
  m.def("targets", [] {
    nb::dict d;
#define FROMAX_EXPORT(name, F) d["fromax_" #name] = Capsule(fromax_##name##_cpu);
    FROMAX_FUNCTORS(FROMAX_EXPORT, FROMAX_EXPORT, FROMAX_EXPORT)
#undef FROMAX_EXPORT
    return d;
  });
  m.def("functors", [] {
    nb::dict d;
#define FROMAX_REDUCE_SHAPE(name, F) d["fromax_" #name] = ReduceShape<fromax::functors::F>();
#define FROMAX_UPDATE_SHAPE(name, F) d["fromax_" #name] = UpdateShape<fromax::functors::F>();
#define FROMAX_FUSED_SHAPE(name, F) d["fromax_" #name] = FusedShape<fromax::functors::F>();
    FROMAX_FUNCTORS(FROMAX_REDUCE_SHAPE, FROMAX_UPDATE_SHAPE, FROMAX_FUSED_SHAPE)
#undef FROMAX_REDUCE_SHAPE
#undef FROMAX_UPDATE_SHAPE
#undef FROMAX_FUSED_SHAPE
    return d;
  });
  // The instruction set the elementwise engine's loops run with here (cpp/elementwise.h, HostIsa).
  m.def("cpu_isa", [] { return fromax_cpu_isa(); });
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
}
