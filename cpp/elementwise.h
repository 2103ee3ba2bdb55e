// The elementwise engine: one functor per algorithm phase, run over a StreamTable by RunEngine.
//
// A reduce functor F (F::kIn streams in, F::kSums per-tensor sums out) supplies
//     Reduce(const Acc* c, const Acc* x, Acc* s)        s[r] = this element's term of sum r
// an update functor F (F::kIn streams in, F::kOut results) supplies
//     Update(const Acc* c, const Acc* x, Acc* y)        y[j] = result j of this element
// where c is the tensor's row of F::kCoeffs coefficients (hyperparameters and per-tensor scalars,
// computed in JAX, so nothing here is ever recompiled) and x holds stream k's element in x[k]. Result 0
// of an update is the parameter's increment; the fused step (kDelta == false) stores p + y[0]
// instead, with p the stream F::kParam.
//
// A per-tensor fused functor F couples the two through each tensor's own sums: F::Reduce (a reduce
// functor reading the first F::Reduce::kIn streams and the row c of F::kCoeffs), then
//     Finish(const Acc* c, const Acc* s, Acc* row)     row = the update's coefficients, from the sums
// then F::Update with that row, all in one call that also returns the sums: a small tensor is reduced, finished and updated
// while it is in cache; a large one's chunk sums are combined in chunk order first (engine.h).
//
// Elements are processed in blocks of kLoad: a stream stored in another type than the accumulator is
// converted into a small buffer (one dtype dispatch per stream per block), one stored in it is read
// in place; the functor runs as a plain loop the compiler vectorises; results in another type are
// rounded back from a buffer, results in the accumulator type written in place. A result may alias
// a stream: each element is read before it is written, and no element is written before its block
// has been converted.
//
// Those loops (element_ranges.inc) are compiled for x86-64's baseline (SSE2), AVX2 and AVX-512,
// and each call runs the widest the host supports (HostIsa): a wheel built for any x86-64 still
// uses the vector width of the machine it runs on, as XLA's own generated code does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dtypes.h"
#include "engine.h"
#include "functors/common.h"
#include "lanes.h"
#include "streams.h"

namespace fromax {

inline constexpr int64_t kLoad = 256;

// Per-tensor partial sums of a reduce functor, combined across chunks in chunk order.
template <int R>
struct SumRow {
  double v[R > 0 ? R : 1] = {};
  SumRow& operator+=(const SumRow& o) {
    for (int r = 0; r < R; ++r) v[r] += o.v[r];
    return *this;
  }
};

}  // namespace fromax

// ---- the element loops, once per instruction set ---------------------------------------------------
#define FROMAX_ISA baseline
#include "element_ranges.inc"
#undef FROMAX_ISA

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FROMAX_X86_MULTIVERSION 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define FROMAX_ISA avx2
#include "element_ranges.inc"
#undef FROMAX_ISA
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#define FROMAX_ISA avx512
#include "element_ranges.inc"
#undef FROMAX_ISA
#pragma GCC pop_options
#endif

namespace fromax {

enum class Isa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The widest instruction set both the CPU (and OS) support and FROMAX_CPU_ISA allows
// ("baseline", "avx2" or "avx512": a cap, for comparing the copies), decided once per process.
inline Isa HostIsa() {
  static const Isa isa = [] {
    Isa best = Isa::kBaseline;
#if FROMAX_X86_MULTIVERSION
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::kAvx2;
    if (best == Isa::kAvx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      best = Isa::kAvx512;
#endif
    const char* cap = std::getenv("FROMAX_CPU_ISA");
    if (cap != nullptr && std::strcmp(cap, "baseline") == 0) return Isa::kBaseline;
    if (cap != nullptr && std::strcmp(cap, "avx2") == 0 && best > Isa::kAvx2) return Isa::kAvx2;
    return best;
  }();
  return isa;
}

inline const char* IsaName(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "baseline";
}

template <class F, class Acc>
SumRow<F::kSums> ReduceRange(Isa isa, const StreamTable& tb, const Acc* c, int64_t t, int64_t begin, int64_t end) {
#if FROMAX_X86_MULTIVERSION
  if (isa == Isa::kAvx512) return avx512::ReduceRange<F, Acc>(tb, c, t, begin, end);
  if (isa == Isa::kAvx2) return avx2::ReduceRange<F, Acc>(tb, c, t, begin, end);
#endif
  (void)isa;
  return baseline::ReduceRange<F, Acc>(tb, c, t, begin, end);
}

template <class F, class Acc, bool kDelta>
void UpdateRange(Isa isa, const StreamTable& tb, const Acc* c, int64_t t, int64_t begin, int64_t end) {
#if FROMAX_X86_MULTIVERSION
  if (isa == Isa::kAvx512) return avx512::UpdateRange<F, Acc, kDelta>(tb, c, t, begin, end);
  if (isa == Isa::kAvx2) return avx2::UpdateRange<F, Acc, kDelta>(tb, c, t, begin, end);
#endif
  (void)isa;
  return baseline::UpdateRange<F, Acc, kDelta>(tb, c, t, begin, end);
}

// A tensor's row of outputs from its combined sums: a norm output's root (of its f64 sum of squares),
// then every output rounded to the accumulator type once.
template <class F, class Acc>
inline void SumsToRow(const SumRow<F::kSums>& s, Acc* out) {
  for (int r = 0; r < F::kSums; ++r) out[r] = Acc(F::IsNorm(r) ? std::sqrt(s.v[r]) : s.v[r]);
}

// coeffs: kCoeffs per entry. sums: kSums per entry (written).
template <class F, class Acc>
void RunReduce(ffi::ThreadPool* pool, const StreamTable& tb, const Acc* coeffs, Acc* sums) {
  const Isa isa = HostIsa();
  RunEngine</*kReduce=*/true, /*kUpdate=*/false>(
      pool, tb.lengths,
      [&](int64_t t, int64_t b, int64_t e) { return ReduceRange<F, Acc>(isa, tb, coeffs + t * F::kCoeffs, t, b, e); },
      [&](int64_t t, const SumRow<F::kSums>& s) { SumsToRow<F, Acc>(s, sums + t * F::kSums); },
      [](int64_t, int64_t, int64_t) {});
}

template <class F, class Acc, bool kDelta>
void RunUpdate(ffi::ThreadPool* pool, const StreamTable& tb, const Acc* coeffs) {
  const Isa isa = HostIsa();
  RunEngine</*kReduce=*/false, /*kUpdate=*/true>(
      pool, tb.lengths, [](int64_t, int64_t, int64_t) { return SumRow<1>{}; }, [](int64_t, const SumRow<1>&) {},
      [&](int64_t t, int64_t b, int64_t e) { UpdateRange<F, Acc, kDelta>(isa, tb, coeffs + t * F::kCoeffs, t, b, e); });
}

// params: F::kCoeffs per entry; the update rows F::Finish makes live in this call only. sums: each
// tensor's F::Reduce::kSums sums (written: what JAX needs of them, e.g. NovoGrad's new moment).
template <class F, class Acc, bool kDelta>
void RunFused(ffi::ThreadPool* pool, const StreamTable& tb, const Acc* params, Acc* sums_out) {
  using R = typename F::Reduce;
  using U = typename F::Update;
  static_assert(R::kCoeffs <= F::kCoeffs, "the reduce reads the leading columns of the fused row");
  const Isa isa = HostIsa();
  std::vector<Acc> rows(size_t(tb.size() * U::kCoeffs));
  RunEngine</*kReduce=*/true, /*kUpdate=*/true>(
      pool, tb.lengths,
      [&](int64_t t, int64_t b, int64_t e) { return ReduceRange<R, Acc>(isa, tb, params + t * F::kCoeffs, t, b, e); },
      [&](int64_t t, const SumRow<R::kSums>& s) {
        Acc* sums = sums_out + t * R::kSums;
        SumsToRow<R, Acc>(s, sums);
        F::Finish(params + t * F::kCoeffs, sums, rows.data() + t * U::kCoeffs);
      },
      [&](int64_t t, int64_t b, int64_t e) { UpdateRange<U, Acc, kDelta>(isa, tb, rows.data() + t * U::kCoeffs, t, b, e); });
}

}  // namespace fromax
