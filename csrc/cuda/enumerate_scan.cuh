// The scan shared by the CUDA kernels of the nas::enumerate_* ops (one file set per op:
// csrc/cuda/enumerate_<op>.{cu,cpp}), raw pointers and the CUDA runtime only.
//
// Same structure and arithmetic as csrc/cpu/enumerate_scan.h: a block walks outer
// prefixes (grid-stride), its threads stride over the prefix's inner cells, whose
// feature sums and scores were precomputed once (enumerate_prepare_launch). The
// per-cell math (decoding, liveness, the filters, the live cost sums, the rounded dot
// products) is the NAS_HOST_DEVICE code of csrc/enumerate_cells.h, which the CPU
// kernels and tests run too. Every product and sum is rounded separately (mul_rn /
// add_rn: __dmul_rn / __dadd_rn on the device, never contracted into an FMA).
//
// Compiled, unverified: no GPU has run these kernels yet (bench/gpu_check.py does,
// when one is lent).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "enumerate_cells.h"

namespace nas::cuda {

// The space, the score and the filters, shared by every launcher. T: [K, F] and
// coeffs: [F] live on the device; inner: [F, M], inner_score: [M] and inner_nz: [M]
// are device workspaces filled by enumerate_prepare_launch (M = K ** m,
// m = enumerate::inner_edges(K, E)).
struct EnumerateArgs {
  const double* T;
  const double* coeffs;
  double bias;
  int K, F, num_nodes, zero_op;
  bool prune;
  bool connected_only, distinct;  // the cell filters (filter_passes)
  bool filter;                    // some filter can drop a cell (the space has a zero op)
  const double* low;              // [F] device, -inf for none
  const double* high;             // [F] device, +inf for none
  int has_cons;
  double* inner;        // [F, M]
  double* inner_score;  // [M]
  uint32_t* inner_nz;   // [M] bit t: inner edge t of inner cell j is not the zero op
};

constexpr int kMaxFeatures = 8;
constexpr int kMaxK = 64;
constexpr int kMaxBins = 4096;

// enumerate_scan.cu
cudaError_t enumerate_prepare_launch(const EnumerateArgs& a, cudaStream_t stream);

// enumerate_score_cells.cu. feat_out: [count, F], score_out: [count]: the cells
// start + i, or indices[i] when indices (device, [count]) is not null.
cudaError_t enumerate_score_launch(const EnumerateArgs& a, int64_t start, int64_t count,
                                   const int64_t* indices, double* feat_out, double* score_out,
                                   cudaStream_t stream);

// enumerate_top_k.cu. Per-block top-k (k <= kMaxK): block b writes its best
// min(k, found) entries, best first, to out_idx/out_score[b * k ...] and their number
// to out_n[b]. The caller merges the blocks' lists (ties by lower index, as on the CPU).
int enumerate_top_k_blocks(int64_t count);
cudaError_t enumerate_top_k_launch(const EnumerateArgs& a, int64_t start, int64_t count, int k,
                                   bool largest, int blocks, int64_t* out_idx, double* out_score,
                                   int64_t* out_n, cudaStream_t stream);

// enumerate_count.cu. hist: [bins + 2] (zeroed by the caller), totals: [2] (count,
// distinct), both unsigned long long on the device. bins <= kMaxBins.
cudaError_t enumerate_count_launch(const EnumerateArgs& a, int64_t start, int64_t count, int bins,
                                   double hist_min, double hist_max, unsigned long long* hist,
                                   unsigned long long* totals, cudaStream_t stream);

#if defined(__CUDACC__)
namespace scan {

using enumerate::add_rn;
using enumerate::alive_edge_mask;
using enumerate::cell_sums;
using enumerate::decode_digits;
using enumerate::dot_rn;
using enumerate::filter_passes;
using enumerate::inner_edges;
using enumerate::kMaxNodes;
using enumerate::make_edges;

constexpr int kThreads = 256;
constexpr int kMaxEdges = kMaxNodes * (kMaxNodes - 1) / 2;
constexpr int kMaxPatterns = 1 << enumerate::kInnerEdgesMax;  // inner zero patterns

struct Geo {
  int E, m, outer;
  int64_t M;
};

inline Geo make_geo(const EnumerateArgs& a) {
  Geo g;
  g.E = a.num_nodes * (a.num_nodes - 1) / 2;
  g.m = static_cast<int>(inner_edges(a.K, g.E));
  g.outer = g.E - g.m;
  g.M = 1;
  for (int t = 0; t < g.m; ++t) g.M *= a.K;
  return g;
}

// One cell from scratch (any mode): features [F], score, canonical. For the few
// cells score_cells and the top-k winners evaluate.
__device__ inline void eval_cell(const EnumerateArgs& a, const Geo& g, int64_t idx, double* feat,
                                 double* score, bool* canonical) {
  int32_t code[kMaxEdges];
  decode_digits(idx / g.M, a.K, g.outer, code);
  uint64_t alive = ~uint64_t{0};
  bool canon = true;
  if (a.prune) {
    int src[kMaxEdges], dst[kMaxEdges];
    make_edges(a.num_nodes, src, dst);
    decode_digits(idx % g.M, a.K, g.m, code + g.outer);
    uint64_t nz = 0;
    for (int e = 0; e < g.E; ++e)
      if (code[e] != a.zero_op) nz |= uint64_t{1} << e;
    alive = alive_edge_mask(nz, a.num_nodes, g.E, src, dst);
    canon = (nz & ~alive) == 0;
  }
  double o[kMaxFeatures], in[kMaxFeatures];
  cell_sums(a.T, a.K, a.F, code, g.outer, idx % g.M, g.m, alive, o, in);
  for (int f = 0; f < a.F; ++f) feat[f] = add_rn(o[f], in[f]);
  *score = add_rn(dot_rn(a.coeffs, o, a.F, a.bias), dot_rn(a.coeffs, in, a.F, 0.0));
  *canonical = canon;
}

__device__ inline bool within(const EnumerateArgs& a, const double* feat) {
  bool ok = true;
  for (int f = 0; f < a.F; ++f) {
    const double lo = a.low[f], hi = a.high[f];
    if (isinf(lo) && isinf(hi) && lo < 0.0 && hi > 0.0) continue;  // unconstrained
    ok = ok && feat[f] >= lo && feat[f] <= hi;
  }
  return ok;
}

template <bool Largest>
__device__ inline bool better(double s1, int64_t i1, double s2, int64_t i2) {
  if (Largest ? s1 > s2 : s1 < s2) return true;
  return s1 == s2 && i1 < i2;
}

// What a block shares while it walks one outer prefix.
struct PrefixShared {
  int32_t oc[kMaxEdges];  // the prefix's outer op codes
  int src[kMaxEdges], dst[kMaxEdges];
  uint64_t onz;                // bit e: outer edge e is not the zero op
  double pf[kMaxFeatures];     // outer feature sums (all edges alive)
  double ps;                   // bias + coeffs . pf
  uint8_t pass[kMaxPatterns];  // without prune_dead: filter verdict per inner zero pattern
};

// Walks the cells [start, end): calls visit(index, score, ok, canonical) for each; ok
// folds in the bounds and the filters. The prefix is decoded once per block (thread
// 0); a cell then costs its inner block's precomputed sums, or under prune_dead its
// liveness and live sums from the shared outer codes (no per-cell index decode).
template <bool Prune, class Visit>
__device__ void walk(const EnumerateArgs& a, const Geo& g, int64_t start, int64_t end,
                     Visit& visit) {
  __shared__ PrefixShared sh;
  if (threadIdx.x == 0) make_edges(a.num_nodes, sh.src, sh.dst);
  const int64_t p_first = start / g.M, p_last = (end - 1) / g.M;
  const int Q = 1 << g.m;
  for (int64_t p = p_first + blockIdx.x; p <= p_last; p += gridDim.x) {
    const int64_t j0 = p == p_first ? start % g.M : 0;
    const int64_t j1 = p == p_last ? (end - 1) % g.M + 1 : g.M;
    if (threadIdx.x == 0) {
      decode_digits(p, a.K, g.outer, sh.oc);
      uint64_t onz = 0;
      for (int e = 0; e < g.outer; ++e)
        if (sh.oc[e] != a.zero_op) onz |= uint64_t{1} << e;
      sh.onz = onz;
      if (!Prune) {
        double unused[kMaxFeatures];
        cell_sums(a.T, a.K, a.F, sh.oc, g.outer, 0, 0, ~uint64_t{0}, sh.pf, unused);
        sh.ps = dot_rn(a.coeffs, sh.pf, a.F, a.bias);
      }
    }
    __syncthreads();
    if (!Prune && a.filter) {  // Q <= M verdicts per prefix of M cells, shared by all
      for (int q = threadIdx.x; q < Q; q += blockDim.x) {
        const uint64_t nz = sh.onz | (static_cast<uint64_t>(q) << g.outer);
        sh.pass[q] = filter_passes(nz, alive_edge_mask(nz, a.num_nodes, g.E, sh.src, sh.dst),
                                   a.connected_only, a.distinct);
      }
      __syncthreads();
    }
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
      double feat[kMaxFeatures], s;
      bool canon = true, ok = true;
      if (Prune) {
        const uint64_t nz = sh.onz | (static_cast<uint64_t>(a.inner_nz[j]) << g.outer);
        const uint64_t alive = alive_edge_mask(nz, a.num_nodes, g.E, sh.src, sh.dst);
        canon = (nz & ~alive) == 0;
        ok = filter_passes(nz, alive, a.connected_only, a.distinct);
        double o[kMaxFeatures], in[kMaxFeatures];
        cell_sums(a.T, a.K, a.F, sh.oc, g.outer, j, g.m, alive, o, in);
        for (int f = 0; f < a.F; ++f) feat[f] = add_rn(o[f], in[f]);
        s = add_rn(dot_rn(a.coeffs, o, a.F, a.bias), dot_rn(a.coeffs, in, a.F, 0.0));
        if (a.has_cons) ok = ok && within(a, feat);
      } else {
        s = add_rn(sh.ps, a.inner_score[j]);
        if (a.filter) ok = sh.pass[a.inner_nz[j]];
        if (a.has_cons) {
          for (int f = 0; f < a.F; ++f) feat[f] = add_rn(sh.pf[f], a.inner[f * g.M + j]);
          ok = ok && within(a, feat);
        }
      }
      visit(p * g.M + j, s, ok, canon);
    }
    __syncthreads();  // sh is rewritten for the next prefix
  }
}

inline int blocks_for(int64_t count, int64_t M) {
  const int64_t prefixes = count / M + 2;
  int64_t b = prefixes < 65535 * 4 ? prefixes : 65535 * 4;
  return static_cast<int>(b < 1 ? 1 : b);
}

}  // namespace scan
#endif  // __CUDACC__

}  // namespace nas::cuda
