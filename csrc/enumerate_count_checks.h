// Entry checks of nas::enumerate_count, shared by its CPU and CUDA registrations.
#pragma once
#include "enumerate_checks.h"

namespace nas::enumerate {

// op_features [num_ops, F], coeffs [F], low/high [F] float64; bins >= 0 over a
// finite [hist_min, hist_max) when bins > 0.
inline void check_count_args(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
                             const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                             int64_t zero_op, int64_t start, int64_t count, int64_t bins,
                             double hist_min, double hist_max) {
  check_coeffs_1d(coeffs);
  TORCH_CHECK_VALUE(bins >= 0, "bins must be >= 0, got ", bins);
  if (bins > 0)
    TORCH_CHECK_VALUE(std::isfinite(hist_min) && std::isfinite(hist_max) && hist_min < hist_max,
                      "histogram range must be finite with hist_min < hist_max, got [", hist_min,
                      ", ", hist_max, "]");
  check_scan_inputs(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, start, count);
}

}  // namespace nas::enumerate
