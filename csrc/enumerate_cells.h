// Shared by the CPU and CUDA implementations of the nas::enumerate_* ops: the split
// of a cell's edges into an outer prefix and an inner block, decoding, dead-node
// pruning, the cell filters and the per-cell cost sums. Plain C++ (no torch headers)
// so that the .cu kernels include it: the CPU tests exercise the code the GPU runs.
#pragma once
#include <cstdint>

#include "host_device.h"

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

NAS_HOST_DEVICE inline int64_t inner_edges(int64_t num_ops, int64_t num_edges) {
  int64_t m = 0, cells = 1;
  while (m < num_edges && m < kInnerEdgesMax && cells * num_ops <= kInnerCellsMax) {
    cells *= num_ops;
    ++m;
  }
  return m;
}

// Edges (i, j), i < j, row-major: fills src/dst, returns the edge count.
NAS_HOST_DEVICE inline int make_edges(int num_nodes, int* src, int* dst) {
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
NAS_HOST_DEVICE inline uint64_t alive_edge_mask(uint64_t nonzero, int num_nodes, int num_edges,
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

// The cell filters of the enumerate ops (nas.enumerate's connected_only / distinct),
// decided by the cell's zero pattern alone: `nonzero` as above and `alive` its
// alive_edge_mask. connected: the output depends on the input, i.e. a non-zero path
// joins node 0 to the last node, i.e. some edge is alive. canonical: every non-zero
// edge is alive (no op sits where prune_dead would drop it): one cell per class of
// cells that prune alike. Without a zero op every edge is non-zero and alive, so
// every cell passes. Neither depends on prune_dead (which only changes the costs).
NAS_HOST_DEVICE inline bool filter_passes(uint64_t nonzero, uint64_t alive, bool connected_only,
                                          bool distinct) {
  return (!connected_only || alive != 0) && (!distinct || (nonzero & ~alive) == 0);
}

NAS_HOST_DEVICE inline bool cell_passes(uint64_t nonzero, int num_nodes, int num_edges,
                                        const int* src, const int* dst, bool connected_only,
                                        bool distinct) {
  return filter_passes(nonzero, alive_edge_mask(nonzero, num_nodes, num_edges, src, dst),
                       connected_only, distinct);
}

// Rounded float64 product and sum: on the device __dmul_rn / __dadd_rn, which nvcc
// never contracts into an FMA (that would change the last bit); on the host the
// plain operators, with contraction off in the files that include this (see
// csrc/cpu/enumerate_scan.h and CMakeLists.txt).
NAS_HOST_DEVICE inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

NAS_HOST_DEVICE inline double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// start + coeffs[0] * x[0] + coeffs[1] * x[1] + ..., left to right: a score row.
NAS_HOST_DEVICE inline double dot_rn(const double* coeffs, const double* x, int F, double start) {
  double s = start;
  for (int f = 0; f < F; ++f) s = add_rn(s, mul_rn(coeffs[f], x[f]));
  return s;
}

// Op codes of the `n` mixed-radix digits of v in base K (last digit fastest).
NAS_HOST_DEVICE inline void decode_digits(int64_t v, int K, int n, int32_t* codes) {
  for (int e = n - 1; e >= 0; --e) {
    codes[e] = static_cast<int32_t>(v % K);
    v /= K;
  }
}

// One cell's live feature sums: outer[f] over its first `outer` edges, inner[f] over
// the other m, each left to right from 0.0, an edge adding T[code, f] when its bit in
// `alive` is set and 0.0 otherwise (the spec's arithmetic, nas/ops/_reference.py).
// outer_codes: [outer]; the inner codes are the m digits of inner cell j.
NAS_HOST_DEVICE inline void cell_sums(const double* T, int K, int F, const int32_t* outer_codes,
                                      int outer, int64_t j, int m, uint64_t alive,
                                      double* outer_sum, double* inner_sum) {  // [F] each
  for (int f = 0; f < F; ++f) outer_sum[f] = inner_sum[f] = 0.0;
  for (int e = 0; e < outer; ++e) {
    const bool on = (alive >> e) & 1u;
    for (int f = 0; f < F; ++f)
      outer_sum[f] = add_rn(outer_sum[f], on ? T[outer_codes[e] * F + f] : 0.0);
  }
  int64_t div = 1;
  for (int t = 1; t < m; ++t) div *= K;
  for (int t = 0; t < m; ++t, div /= K) {  // inner edge t's digit, most significant first
    const int code = static_cast<int>((j / div) % K);
    const bool on = (alive >> (outer + t)) & 1u;
    for (int f = 0; f < F; ++f) inner_sum[f] = add_rn(inner_sum[f], on ? T[code * F + f] : 0.0);
  }
}

}  // namespace nas::enumerate
