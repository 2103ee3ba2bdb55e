// The multi-tensor work plan: how a call's tensors are cut into work items.
//
// A tensor of at most kChunk elements is "small": it is processed whole by one work item, so its
// reduce pass and its update pass run back to back while the tensor is still in L1/L2. Consecutive
// small tensors are packed into one item until the item holds ~kChunk elements (2000 tiny tensors
// then cost ~30 items, not 2000). A "large" tensor is cut into kChunk-element chunks: their partial
// sums are computed in parallel and combined per tensor in chunk order, so the result does not
// depend on the number of threads (deterministic reductions).
#pragma once

#include <cstdint>
#include <vector>

namespace fromax {

// 64K elements: 256 KiB per f32 stream, so a chunk of W and g (512 KiB) sits in a 2 MiB L2.
inline constexpr int64_t kChunk = int64_t{1} << 16;

struct Item {
  int64_t tensor;  // first tensor of a pack, or the tensor a chunk belongs to
  int64_t end;     // pack: one past its last tensor; chunk: one past its last element
  int64_t begin;   // chunk: first element; pack: -1
  bool is_pack() const { return begin < 0; }
};

struct Plan {
  std::vector<Item> items;           // phase A: packs (fused) and chunks of large tensors
  std::vector<int64_t> large;        // large tensors, in order
  std::vector<int64_t> first_chunk;  // per large tensor: index of its first chunk in `items`
  int64_t total_elements = 0;
};

inline Plan MakePlan(const std::vector<int64_t>& lengths) {
  Plan plan;
  const int64_t n = int64_t(lengths.size());
  int64_t pack_start = -1, pack_size = 0;
  auto close_pack = [&](int64_t end) {
    if (pack_start >= 0) plan.items.push_back(Item{pack_start, end, -1});
    pack_start = -1;
    pack_size = 0;
  };
  for (int64_t t = 0; t < n; ++t) {
    const int64_t len = lengths[t];
    plan.total_elements += len;
    if (len <= kChunk) {
      if (pack_start < 0) pack_start = t;
      pack_size += len;
      if (pack_size >= kChunk) close_pack(t + 1);
      continue;
    }
    close_pack(t);
    plan.large.push_back(t);
    plan.first_chunk.push_back(int64_t(plan.items.size()));
    for (int64_t b = 0; b < len; b += kChunk) plan.items.push_back(Item{t, std::min(len, b + kChunk), b});
  }
  close_pack(n);
  return plan;
}

}  // namespace fromax
