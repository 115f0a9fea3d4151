// Shared by the CPU and CUDA implementations of nas::decode_cells.
#pragma once
#include <cstdint>

#include "host_device.h"

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

// row[0, num_edges): the mixed-radix digits of cell index v in base num_ops, last edge
// fastest. One cell's digits are a serial chain of divisions (CPU and CUDA alike).
NAS_HOST_DEVICE inline void decode_cell(uint64_t v, uint64_t num_ops, int64_t num_edges,
                                        int64_t* row) {  // [num_edges]
  for (int64_t e = num_edges - 1; e >= 0; --e) {
    row[e] = static_cast<int64_t>(v % num_ops);
    v /= num_ops;
  }
}

}  // namespace nas
