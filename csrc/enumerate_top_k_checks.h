// Entry checks of nas::enumerate_top_k, shared by its CPU and CUDA registrations.
#pragma once
#include "enumerate_checks.h"

namespace nas::enumerate {

// op_features [num_ops, F], coeffs [F], low/high [F] float64; k >= 1.
inline void check_top_k_args(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
                             const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                             int64_t zero_op, int64_t start, int64_t count, int64_t k) {
  check_coeffs_1d(coeffs);
  TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
  check_scan_inputs(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, start, count);
}

}  // namespace nas::enumerate
