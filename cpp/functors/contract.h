// The functors' operand contract (python/fromax/functors.h, which Python reads too) as C++ types:
// contract::<name> per entry, with its streams, sums, results and coefficient columns as named
// indices (in::g, sum::pp, out::m, col::lr) and their counts (kIn, kSums, kOut, kCoeffs, kParam).
// A functor derives from its entry and indexes by name; list.h checks each functor's entry.
#pragma once

#include "functors.h"

namespace fromax::contract {

// The number of names in a stringized list "(a, b, c)": "()" has none.
constexpr int CountNames(const char* list) {
  int commas = 0;
  bool any = false;
  for (const char* p = list; *p; ++p) {
    if (*p == ',') ++commas;
    if (*p != '(' && *p != ')' && *p != ' ' && *p != ',') any = true;
  }
  return any ? commas + 1 : 0;
}

constexpr bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Name k of a stringized list, and whether two names are the same.
constexpr const char* NameAt(const char* list, int k) {
  const char* p = list;
  while (*p && !IsNameChar(*p)) ++p;
  for (; k > 0; --k) {
    while (*p && *p != ',') ++p;
    while (*p && !IsNameChar(*p)) ++p;
  }
  return p;
}
constexpr bool SameName(const char* a, const char* b) {
  for (; IsNameChar(*a) || IsNameChar(*b); ++a, ++b)
    if (*a != *b) return false;
  return true;
}

// The index in `inputs` of the stream that result 0 of `results` replaces (-1: none).
constexpr int ReplacedStream(const char* inputs, const char* results) {
  for (int k = 0; k < CountNames(inputs); ++k)
    if (SameName(NameAt(inputs, k), NameAt(results, 0))) return k;
  return -1;
}

// Whether list `a` starts with the names of list `b` (a fused row hands its reduce its first columns).
constexpr bool StartsWith(const char* a, const char* b) {
  if (CountNames(b) > CountNames(a)) return false;
  for (int k = 0; k < CountNames(b); ++k)
    if (!SameName(NameAt(a, k), NameAt(b, k))) return false;
  return true;
}

// Whether every result names an input stream.
constexpr bool ResultsAreInputs(const char* inputs, const char* results) {
  for (int j = 0; j < CountNames(results); ++j) {
    bool found = false;
    for (int k = 0; k < CountNames(inputs); ++k) found = found || SameName(NameAt(inputs, k), NameAt(results, j));
    if (!found) return false;
  }
  return true;
}

// Whether name k of a stringized list ends in "_norm": a reduce's norm output. The functor's Reduce
// gives the element's value for it; the engine sums its square with no underflow or overflow for
// f32, bf16 and f16 data (CPU: f32 lanes, a block summed again in f64 where that sum is not exact,
// element_ranges.inc; CUDA: f64) and returns the square root, the tensor's 2-norm.
constexpr bool IsNormName(const char* list, int k) {
  const char* p = NameAt(list, k);
  int n = 0;
  while (IsNameChar(p[n])) ++n;
  const char* suffix = "_norm";
  if (n < 5) return false;
  for (int i = 0; i < 5; ++i)
    if (p[n - 5 + i] != suffix[i]) return false;
  return true;
}

// A bit per name of a stringized list, set where the name is a norm output (IsNormName).
constexpr unsigned NormMask(const char* list) {
  unsigned mask = 0;
  for (int k = 0; k < CountNames(list); ++k)
    if (IsNormName(list, k)) mask |= 1u << k;
  return mask;
}

// IsNorm is called from kernels: it reads a constant, so it needs no constexpr evaluation on the
// device (nvcc admits only __host__ __device__ functions there).
#if defined(__CUDACC__)
#define FROMAX_CONTRACT_FN __host__ __device__ constexpr
#else
#define FROMAX_CONTRACT_FN constexpr
#endif

#define FROMAX_UNPAREN(...) __VA_ARGS__
#define FROMAX_STRINGIZE_(x) #x
#define FROMAX_STRINGIZE(x) FROMAX_STRINGIZE_(x)
#define FROMAX_NAMES(kind, list)           \
  struct kind {                            \
    enum Index : int { FROMAX_UNPAREN list }; \
  };

// What a reduce and an update entry share: inputs, one more list (sums or results), columns.
#define FROMAX_CONTRACT_LISTS(inputs, kind, outputs, columns)                          \
  FROMAX_NAMES(in, inputs)                                                              \
  FROMAX_NAMES(kind, outputs)                                                           \
  FROMAX_NAMES(col, columns)                                                            \
  static constexpr const char *kInNames = #inputs, *kColNames = #columns;               \
  static constexpr int kIn = CountNames(#inputs), kCoeffs = CountNames(#columns);

#define FROMAX_CONTRACT_REDUCE(name, F, inputs, sums, columns)                       \
  struct name {                                                                        \
    FROMAX_CONTRACT_LISTS(inputs, sum, sums, columns)                                  \
    static constexpr const char* kSumNames = #sums;                                    \
    static constexpr int kSums = CountNames(#sums);                                    \
    static constexpr unsigned kNormMask = NormMask(#sums);                             \
    static FROMAX_CONTRACT_FN bool IsNorm(int r) { return (kNormMask >> r) & 1u; }     \
  };

#define FROMAX_CONTRACT_UPDATE(name, F, inputs, results, columns)                    \
  struct name {                                                                        \
    FROMAX_CONTRACT_LISTS(inputs, out, results, columns)                               \
    static constexpr const char* kOutNames = #results;                                 \
    static constexpr int kOut = CountNames(#results);                                  \
    static constexpr int kParam = ReplacedStream(#inputs, #results);                   \
    static_assert(kParam >= 0 && ResultsAreInputs(#inputs, #results),                 \
                  #name ": every result must name the input stream it replaces");      \
  };

#define FROMAX_CONTRACT_FUSED(name, F, reduce, update, columns)                       \
  struct name {                                                                          \
    FROMAX_NAMES(col, columns)                                                           \
    static constexpr const char* kColNames = #columns;                                   \
    static constexpr int kCoeffs = CountNames(#columns);                                 \
  };

FROMAX_CONTRACT(FROMAX_CONTRACT_REDUCE, FROMAX_CONTRACT_UPDATE, FROMAX_CONTRACT_FUSED)

// The gradient prologue's columns, after its functor's own.
FROMAX_NAMES(prologue_col, FROMAX_PROLOGUE_COLUMNS)
inline constexpr int kPrologueCols = CountNames(FROMAX_STRINGIZE(FROMAX_PROLOGUE_COLUMNS));

}  // namespace fromax::contract
