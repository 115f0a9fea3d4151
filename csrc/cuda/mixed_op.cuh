// Launchers of the nas::mixed_op CUDA kernels (raw pointers, no torch headers).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "mixed_op.h"

namespace nas::cuda {

// The parametric outputs: param p is [B, N, D] with element strides (sb, sn, sd);
// dp[p] is its gradient (backward only), [B, N, D] with strides (dsb, dsn, dsd).
struct MixedOpParams {
  const void* p[kMixedOpMaxParams] = {};
  int64_t sb[kMixedOpMaxParams] = {};
  int64_t sn[kMixedOpMaxParams] = {};
  int64_t sd[kMixedOpMaxParams] = {};
  void* dp[kMixedOpMaxParams] = {};
  int64_t dsb[kMixedOpMaxParams] = {};
  int64_t dsn[kMixedOpMaxParams] = {};
  int64_t dsd[kMixedOpMaxParams] = {};
};

// The backward's grid is at most this many blocks; its per-block partial sums of
// s_k = <g, op_k(x)> live in a [kMixedOpMaxBlocks, kMixedOpMaxK] double workspace.
constexpr int kMixedOpMaxBlocks = 1024;

// x, y: [B, N, D] contiguous; alpha: [K] contiguous. T = float or double.
template <typename T>
cudaError_t mixed_op_forward_launch(const T* x, const T* alpha, const MixedOpPlan& plan,
                                    const MixedOpParams& params, T* y, int64_t B, int64_t N,
                                    int64_t D, cudaStream_t stream);

// grad, x, dx: [B, N, D] contiguous; dalpha: [K]; partials: the workspace above. A
// gradient not needed is null (dx, dalpha, params.dp[p]) and is not computed.
template <typename T>
cudaError_t mixed_op_backward_launch(const T* grad, const T* x, const T* alpha,
                                     const MixedOpPlan& plan, const MixedOpParams& params, T* dx,
                                     T* dalpha, double* partials, int64_t B, int64_t N, int64_t D,
                                     cudaStream_t stream);

}  // namespace nas::cuda
