// The functor contract a kernel library was compiled from, exported to Python as each module's
// functors() (cpp/module.cc, cuda/module.cc), for fromax/_contract.py to check against the
// package's python/fromax/functors.h before it registers the library's targets.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <string>

#include "functors/list.h"

namespace fromax {

// Per target: (kind, functor type, inputs, sums or results, columns, a fused functor's (reduce,
// update) or None, layout): the lists as written in the table, and the layout the functor type
// declares, (kIn, kSums or kOut, kCoeffs, kParam) of a reduce or update, (kCoeffs,) of a
// fused functor.
inline std::string JoinLists(const char* a, const char* b) {  // "(x, y)" + "(z)" -> "(x, y, z)"
  std::string left(a), right(b);
  left = left.substr(1, left.size() - 2);
  right = right.substr(1, right.size() - 2);
  return "(" + left + (left.empty() || right.empty() ? "" : ", ") + right + ")";
}
template <class F>
nanobind::tuple ReduceLayout() {
  return nanobind::make_tuple(F::kIn, F::kSums, F::kCoeffs, -1);
}
template <class F>
nanobind::tuple UpdateLayout() {
  return nanobind::make_tuple(F::kIn, F::kOut, F::kCoeffs, F::kParam);
}
template <class F>
nanobind::tuple FusedLayout() {
  return nanobind::make_tuple(F::kCoeffs);
}
inline nanobind::dict CompiledContract() {
  namespace nb = nanobind;
  namespace fn = fromax::functors;
  namespace ct = fromax::contract;
  nb::dict d;
#define FROMAX_EXPORT_REDUCE(name, F, inputs, sums, columns) \
  d["fromax_" #name] = nb::make_tuple("reduce", #F, #inputs, #sums, #columns, nb::none(), ReduceLayout<fn::F>());
#define FROMAX_EXPORT_UPDATE(name, F, inputs, results, columns) \
  d["fromax_" #name] = nb::make_tuple("update", #F, #inputs, #results, #columns, nb::none(), UpdateLayout<fn::F>());
#define FROMAX_EXPORT_FUSED(name, F, reduce, update, columns) \
  d["fromax_" #name] = nb::make_tuple("fused", #F, "()", "()", #columns, nb::make_tuple(#reduce, #update), FusedLayout<fn::F>());
#define FROMAX_EXPORT_REDUCE_TWIN(name, F, base)                                                                  \
  d["fromax_" #name] = nb::make_tuple("reduce", #F, ct::base::kInNames, ct::base::kSumNames,                     \
                                      JoinLists(ct::base::kColNames, FROMAX_STRINGIZE(FROMAX_PROLOGUE_COLUMNS)), \
                                      nb::none(), ReduceLayout<fn::F>());
#define FROMAX_EXPORT_UPDATE_TWIN(name, F, base)                                                                  \
  d["fromax_" #name] = nb::make_tuple("update", #F, ct::base::kInNames, ct::base::kOutNames,                     \
                                      JoinLists(ct::base::kColNames, FROMAX_STRINGIZE(FROMAX_PROLOGUE_COLUMNS)), \
                                      nb::none(), UpdateLayout<fn::F>());
  FROMAX_CONTRACT(FROMAX_EXPORT_REDUCE, FROMAX_EXPORT_UPDATE, FROMAX_EXPORT_FUSED)
  FROMAX_PROLOGUE_TWINS(FROMAX_EXPORT_REDUCE_TWIN, FROMAX_EXPORT_UPDATE_TWIN)
#undef FROMAX_EXPORT_REDUCE
#undef FROMAX_EXPORT_UPDATE
#undef FROMAX_EXPORT_FUSED
#undef FROMAX_EXPORT_REDUCE_TWIN
#undef FROMAX_EXPORT_UPDATE_TWIN
  return d;
}

}  // namespace fromax
