// Shared by the CPU and CUDA implementations of nas::mixed_op: the op codes and the
// plan (where each candidate sits in alpha). No torch headers (the .cu files use it).
#pragma once
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
NAS_HOST_DEVICE inline int mixed_op_window_count(int64_t n, int64_t N) {
  return 1 + (n > 0 ? 1 : 0) + (n + 1 < N ? 1 : 0);
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
