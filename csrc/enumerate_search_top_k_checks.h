// Entry checks of nas::enumerate_search_top_k, shared by its CPU and CUDA registrations.
#pragma once
#include "enumerate_checks.h"

namespace nas::enumerate {

// op_features [num_ops, F], coeffs [F], low/high [F] float64; k, max_nodes >= 1.
inline void check_search_top_k_args(const at::Tensor& op_features, const at::Tensor& coeffs,
                                    double bias, const at::Tensor& low, const at::Tensor& high,
                                    int64_t num_nodes, int64_t k, int64_t max_nodes) {
  check_coeffs_1d(coeffs);
  TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
  TORCH_CHECK_VALUE(max_nodes >= 1, "max_nodes must be >= 1, got ", max_nodes);
  check_scan_inputs(op_features, coeffs, bias, &low, &high, num_nodes, -1, 0, 0);
}

}  // namespace nas::enumerate
