// Launchers for the nas::enumerate_* CUDA kernels (raw pointers, no torch headers).
// The arithmetic is the CPU kernels' to the bit (see csrc/cpu/enumerate_scan.h):
// every product and sum is rounded separately (__dmul_rn / __dadd_rn, no FMA).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace nas::cuda {

// The space and the score, shared by every launcher. T: [K, F] and coeffs: [F] live
// on the device; inner: [F, M] and inner_score: [M] are device workspaces filled by
// enumerate_prepare_launch (M = K ** m, m = enumerate::inner_edges(K, E)).
struct EnumerateArgs {
  const double* T;
  const double* coeffs;
  double bias;
  int K, F, num_nodes, zero_op;
  bool prune;
  const double* low;   // [F] device, -inf for none
  const double* high;  // [F] device, +inf for none
  int has_cons;
  double* inner;        // [F, M]
  double* inner_score;  // [M]
};

cudaError_t enumerate_prepare_launch(const EnumerateArgs& a, cudaStream_t stream);

// feat_out: [count, F], score_out: [count]: the cells start + i, or indices[i] when
// indices (device, [count]) is not null.
cudaError_t enumerate_score_launch(const EnumerateArgs& a, int64_t start, int64_t count,
                                   const int64_t* indices, double* feat_out, double* score_out,
                                   cudaStream_t stream);

// Per-block top-k (k <= kMaxK): block b writes its best min(k, found) entries, best
// first, to out_idx/out_score[b * k ...] and their number to out_n[b]. The caller
// merges the blocks' lists (ties by lower index, as on the CPU).
constexpr int kMaxK = 64;
constexpr int kMaxFeatures = 8;
int enumerate_top_k_blocks(int64_t count);
cudaError_t enumerate_top_k_launch(const EnumerateArgs& a, int64_t start, int64_t count, int k,
                                   bool largest, int blocks, int64_t* out_idx, double* out_score,
                                   int* out_n, cudaStream_t stream);

// hist: [bins + 2] (zeroed by the caller), totals: [2] (count, distinct), both
// unsigned long long on the device. bins <= kMaxBins.
constexpr int kMaxBins = 4096;
cudaError_t enumerate_count_launch(const EnumerateArgs& a, int64_t start, int64_t count, int bins,
                                   double hist_min, double hist_max, unsigned long long* hist,
                                   unsigned long long* totals, cudaStream_t stream);

}  // namespace nas::cuda
