// Uploading a call's table: [entries | chunks | extra sections] in one FFI scratch allocation, the
// entries and chunk list written once into a host image and copied with one cudaMemcpyAsync on
// the call's stream (no host synchronisation).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "launch.cuh"
#include "streams.h"
#include "xla/ffi/api/ffi.h"

namespace fromax::cuda {

// A call's work is cut into chunks of kChunk elements of one tensor, one block of kThreads each.
inline constexpr int64_t kChunk = int64_t{1} << 14;
inline constexpr int kThreads = 256;

struct ChunkRef {
  int32_t entry;
  int32_t index;  // chunk `index` of the entry covers [index * kChunk, min(length, (index + 1) * kChunk))
};

// The chunk list holds the chunks of the tensors of one chunk first (num_single_chunks of them:
// the fused kind runs those a block per tensor), then every other tensor's chunks, each tensor's
// consecutive and in order (its sums are added in that order).
template <class Entry>
struct DeviceTable {
  Entry* entries = nullptr;
  ChunkRef* chunks = nullptr;
  std::vector<char*> extra;  // the extra sections, in order
  int64_t num_entries = 0, num_chunks = 0, num_single_chunks = 0;
};

// The chunks of kChunk elements of one tensor, and of every tensor of a call (the grid of its
// grid-stride kernels).
inline int32_t ChunksOf(int64_t length) { return int32_t((length + kChunk - 1) / kChunk); }

inline int64_t CountChunks(const std::vector<int64_t>& lengths) {
  int64_t num_chunks = 0;
  for (int64_t length : lengths) num_chunks += ChunksOf(length);
  return num_chunks;
}

// make_entry(t, first_chunk, num_chunks) -> Entry: entry t of the table (tensor t's chunks are
// [first_chunk, first_chunk + num_chunks) of the chunk list, kChunk elements each).
template <class Entry, class MakeEntry>
xla::ffi::Error UploadTable(const std::vector<int64_t>& lengths, std::initializer_list<size_t> extra_bytes,
                            cudaStream_t stream, Scratch& scratch, const MakeEntry& make_entry,
                            DeviceTable<Entry>* table) {
  const int64_t n = int64_t(lengths.size());
  const int64_t num_chunks = CountChunks(lengths);
  if (num_chunks > INT32_MAX) return Invalid("too many chunks in one call");
  table->num_entries = n;
  table->num_chunks = num_chunks;
  const size_t entries_bytes = AlignUp(n * sizeof(Entry));
  const size_t chunks_bytes = AlignUp(num_chunks * sizeof(ChunkRef));
  size_t total = entries_bytes + chunks_bytes;
  for (size_t b : extra_bytes) total += AlignUp(b);
  if (total == 0) return xla::ffi::Error::Success();
  std::optional<void*> memory = scratch.Allocate(total, kScratchAlignment);
  if (!memory.has_value())
    return xla::ffi::Error(xla::ffi::ErrorCode::kResourceExhausted,
                           "fromax: allocating " + std::to_string(total) + " bytes of scratch for the tensor table failed");
  char* base = static_cast<char*>(*memory);
  table->entries = reinterpret_cast<Entry*>(base);
  table->chunks = reinterpret_cast<ChunkRef*>(base + entries_bytes);
  char* next = base + entries_bytes + chunks_bytes;
  for (size_t b : extra_bytes) {
    table->extra.push_back(next);
    next += AlignUp(b);
  }
  std::vector<char> staging(entries_bytes + chunks_bytes);
  Entry* entries = reinterpret_cast<Entry*>(staging.data());
  ChunkRef* chunks = reinterpret_cast<ChunkRef*>(staging.data() + entries_bytes);
  int32_t next_chunk = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (ChunksOf(lengths[t]) != 1) continue;
    new (&entries[t]) Entry(make_entry(t, next_chunk, 1));
    new (&chunks[next_chunk++]) ChunkRef{int32_t(t), 0};
  }
  table->num_single_chunks = next_chunk;
  for (int64_t t = 0; t < n; ++t) {
    const int32_t num = ChunksOf(lengths[t]);
    if (num == 1) continue;
    new (&entries[t]) Entry(make_entry(t, next_chunk, num));
    for (int32_t c = 0; c < num; ++c) new (&chunks[next_chunk++]) ChunkRef{int32_t(t), c};
  }
  // From pageable memory: staged before the call returns, ordered on the stream, no device sync.
  cudaError_t err = cudaMemcpyAsync(base, staging.data(), staging.size(), cudaMemcpyHostToDevice, stream);
  return err == cudaSuccess ? xla::ffi::Error::Success() : CudaError(err, "uploading the tensor table");
}

}  // namespace fromax::cuda
