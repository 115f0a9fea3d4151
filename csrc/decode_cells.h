// Shared by the CPU and CUDA implementations of nas::decode_cells.
#pragma once
#include <cstdint>

namespace nas {

// num_ops ** num_edges, or -1 when it does not fit in int64 (then every
// non-negative int64 index is a valid cell index).
inline int64_t space_size_or_neg1(int64_t num_ops, int64_t num_edges) {
  if (num_ops == 1 || num_edges == 0) return 1;
  __int128 size = 1;
  for (int64_t e = 0; e < num_edges; ++e) {
    size *= num_ops;
    if (size > INT64_MAX) return -1;
  }
  return static_cast<int64_t>(size);
}

}  // namespace nas
