// Entry checks of nas::enumerate_score_cells, shared by its CPU and CUDA registrations.
#pragma once
#include "enumerate_checks.h"

namespace nas::enumerate {

// op_features [num_ops, F], coeffs [F] float64; cells [start, start + count).
inline void check_score_cells_args(const at::Tensor& op_features, const at::Tensor& coeffs,
                                   double bias, int64_t num_nodes, int64_t zero_op, int64_t start,
                                   int64_t count) {
  check_coeffs_1d(coeffs);
  check_scan_inputs(op_features, coeffs, bias, nullptr, nullptr, num_nodes, zero_op, start, count);
}

}  // namespace nas::enumerate
