// Shared by the CPU and CUDA implementations of the nas::enumerate_* ops: the split
// of a cell's edges into an outer prefix and an inner block, and dead-node pruning.
// Plain C++ (no torch headers) so that the .cu kernels can include it.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define NAS_HD __host__ __device__
#else
#define NAS_HD
#endif

namespace nas::enumerate {

// The inner block is the last m edges, with num_ops**m <= kInnerCellsMax cells and
// m <= kInnerEdgesMax: under prune_dead the scan keeps tables over the 2**m zero
// patterns of the inner edges, held as uint32 bit masks (a one-op space would
// otherwise put every edge in the inner block: 2**28 patterns at 8 nodes).
// A cell's feature sum is (outer edges summed left to right) + (inner edges summed
// left to right), in float64: the split is part of the arithmetic's definition (see
// nas/enumerate.py), so the CPU, CUDA and reference implementations round alike.
constexpr int64_t kInnerCellsMax = 4096;
constexpr int64_t kInnerEdgesMax = 12;  // 4096 == 2**12: every num_ops >= 2 meets it anyway
constexpr int kMaxNodes = 11;           // 55 edges: edge masks fit in uint64

NAS_HD inline int64_t inner_edges(int64_t num_ops, int64_t num_edges) {
  int64_t m = 0, cells = 1;
  while (m < num_edges && m < kInnerEdgesMax && cells * num_ops <= kInnerCellsMax) {
    cells *= num_ops;
    ++m;
  }
  return m;
}

// Edges (i, j), i < j, row-major: fills src/dst, returns the edge count.
NAS_HD inline int make_edges(int num_nodes, int* src, int* dst) {
  int e = 0;
  for (int i = 0; i < num_nodes; ++i)
    for (int j = i + 1; j < num_nodes; ++j) {
      src[e] = i;
      dst[e] = j;
      ++e;
    }
  return e;
}

// Bit e set when edge e has no dead endpoint. nonzero: bit e set when edge e carries
// an op other than `zero`. A node is alive when a non-zero path reaches it from node
// 0 and one leads from it to the last node; an edge into or out of a dead node costs
// nothing. Edges run forward, so one pass each way in node order suffices.
NAS_HD inline uint64_t alive_edge_mask(uint64_t nonzero, int num_nodes, int num_edges,
                                       const int* src, const int* dst) {
  uint32_t in_nz[kMaxNodes] = {0};
  uint32_t out_nz[kMaxNodes] = {0};
  for (int e = 0; e < num_edges; ++e) {
    if ((nonzero >> e) & 1u) {
      in_nz[dst[e]] |= 1u << src[e];
      out_nz[src[e]] |= 1u << dst[e];
    }
  }
  uint32_t fwd = 1u;
  for (int j = 1; j < num_nodes; ++j)
    if (in_nz[j] & fwd) fwd |= 1u << j;
  uint32_t bwd = 1u << (num_nodes - 1);
  for (int i = num_nodes - 2; i >= 0; --i)
    if (out_nz[i] & bwd) bwd |= 1u << i;
  const uint32_t alive = fwd & bwd;
  uint64_t mask = 0;
  for (int e = 0; e < num_edges; ++e)
    if (((alive >> src[e]) & 1u) && ((alive >> dst[e]) & 1u)) mask |= uint64_t{1} << e;
  return mask;
}

}  // namespace nas::enumerate
