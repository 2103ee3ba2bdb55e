// The multi-tensor engine: one call processes a whole table of tensors in two phases.
//
//   phase A (parallel over plan items): reduce each chunk of a large tensor into its partial sums;
//            for a small tensor, reduce -> finish -> update it whole while it is in cache.
//   combine: per large tensor, add its chunk partials in chunk order (deterministic), finish it.
//   phase B (parallel): update the chunks of large tensors, last chunk first (most recently read).
//
// A functor supplies three hooks: reduce(t, begin, end) -> partial sums, finish(t, sums) (turns a tensor's
// sums into its update coefficients, or stores them) and update(t, begin, end).
#pragma once

#include <cstdint>
#include <vector>

#include "parallel_for.h"
#include "plan.h"

namespace fromax {

// Below this many elements a call runs on the calling thread: waking helpers costs more than it saves.
inline constexpr int64_t kParallelThreshold = int64_t{1} << 15;

template <bool kReduce, bool kUpdate, class Reduce, class Finish, class Update>
void RunEngine(xla::ffi::ThreadPool* pool, const std::vector<int64_t>& lengths, const Reduce& reduce,
               const Finish& finish, const Update& update) {
  const Plan plan = MakePlan(lengths);
  const int64_t workers = plan.total_elements < kParallelThreshold ? 1 : int64_t{1} << 30;
  using Partial = decltype(reduce(int64_t{0}, int64_t{0}, int64_t{0}));  // Sums, SumRow<R>: anything with +=
  std::vector<Partial> partial(kReduce ? plan.items.size() : 0);

  ParallelFor(pool, int64_t(plan.items.size()), workers, [&](int64_t i) {
    const Item& it = plan.items[i];
    if (it.is_pack()) {
      for (int64_t t = it.tensor; t < it.end; ++t) {
        if constexpr (kReduce) finish(t, reduce(t, 0, lengths[t]));
        if constexpr (kUpdate) update(t, 0, lengths[t]);
      }
    } else if constexpr (kReduce) {
      partial[i] = reduce(it.tensor, it.begin, it.end);
    } else {
      update(it.tensor, it.begin, it.end);
    }
  });
  if constexpr (!kReduce) return;

  std::vector<int64_t> chunks;  // items of phase B
  for (size_t k = 0; k < plan.large.size(); ++k) {
    const int64_t t = plan.large[k];
    Partial total{};
    int64_t i = plan.first_chunk[k];
    for (; i < int64_t(plan.items.size()) && !plan.items[i].is_pack() && plan.items[i].tensor == t; ++i) {
      total += partial[i];
      if constexpr (kUpdate) chunks.push_back(i);
    }
    finish(t, total);
  }
  if constexpr (kUpdate) {
    const int64_t n = int64_t(chunks.size());
    ParallelFor(pool, n, workers, [&](int64_t j) {
      const Item& it = plan.items[chunks[n - 1 - j]];
      update(it.tensor, it.begin, it.end);
    });
  }
}

}  // namespace fromax
