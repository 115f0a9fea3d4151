// Shared by the CPU and CUDA implementations of nas::mixed_op: the op codes and the
// plan (where each candidate sits in alpha). No torch headers (the .cu files use it).
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace nas {

// Op codes: the index of each op in nas.all_ops().
enum MixedOpCode : int64_t {
  kConv3x3 = 0,
  kConv5x5 = 1,
  kSepConv3x3 = 2,
  kSepConv5x5 = 3,
  kAvgPool3x3 = 4,
  kMaxPool3x3 = 5,
  kSkipConnect = 6,
  kZero = 7,
  kNumMixedOpCodes = 8,
};

inline bool mixed_op_is_parametric(int64_t code) { return code >= 0 && code < kAvgPool3x3; }

// How many rows of x the 3-wide pool window centred on row n of [0, N) covers (1-3):
// avg_pool_3x3 divides by it (count_include_pad=False), in its forward and backward.
NAS_HOST_DEVICE_INLINE int mixed_op_window_count(int64_t n, int64_t N) {
  return 1 + (n > 0 ? 1 : 0) + (n + 1 < N ? 1 : 0);
}

// 1 / window count in T: the avg_pool weight of row n is w_avg * this, and its window
// sum times this is avg_pool's output (forward and backward, CPU and CUDA alike).
template <typename T>
NAS_HOST_DEVICE_INLINE T mixed_op_inv_count(int64_t n, int64_t N) {
  return T(1) / static_cast<T>(mixed_op_window_count(n, N));
}

// max_pool's order: a later element of the window wins only if strictly greater or
// NaN, so the first maximum wins (max_pool1d's rule) and NaN propagates. V: a scalar
// or a GCC vector (then a lane mask).
template <typename V>
NAS_HOST_DEVICE_INLINE auto mixed_op_beats(V v, V best) {
  return (v > best) | (v != v);
}

// softmax(alpha) in double: w[k] for k < K. A is alpha's element type.
template <typename A>
NAS_HOST_DEVICE_INLINE void mixed_op_softmax(const A* alpha, int64_t K, double* w) {
  double m = -HUGE_VAL;
  for (int64_t k = 0; k < K; ++k) {
    const double a = static_cast<double>(alpha[k]);
    m = (m < a) ? a : m;
  }
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += (w[k] = exp(static_cast<double>(alpha[k]) - m));
  for (int64_t k = 0; k < K; ++k) w[k] /= s;
}

// dalpha_k = w_k (s_k - sum_j w_j s_j): softmax's adjoint of dL/dw_k = s_k (double).
NAS_HOST_DEVICE_INLINE void mixed_op_softmax_adjoint(const double* w, const double* s, int64_t K,
                                                     double* dalpha) {
  double mean = 0;
  for (int64_t k = 0; k < K; ++k) mean += w[k] * s[k];
  for (int64_t k = 0; k < K; ++k) dalpha[k] = w[k] * (s[k] - mean);
}

// At most 8 distinct candidates, so at most 4 parametric outputs.
constexpr int kMixedOpMaxK = 8;
constexpr int kMixedOpMaxParams = 4;

// Where each candidate sits in alpha (-1: absent). Parametric candidate p (in op
// order) is alpha[k_param[p]] and param_outputs[p].
struct MixedOpPlan {
  int K = 0;
  int k_avg = -1, k_max = -1, k_skip = -1, k_zero = -1;
  int num_params = 0;
  int k_param[kMixedOpMaxParams] = {-1, -1, -1, -1};

  // Bit 0: avg, bit 1: max, bit 2: skip (zero adds nothing to y or dx).
  int inline_mask() const {
    return (k_avg >= 0 ? 1 : 0) | (k_max >= 0 ? 2 : 0) | (k_skip >= 0 ? 4 : 0);
  }
};

}  // namespace nas
