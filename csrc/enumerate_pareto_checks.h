// Entry checks of nas::enumerate_pareto, shared by its CPU and CUDA registrations.
#pragma once
#include "enumerate_checks.h"

namespace nas::enumerate {

// op_features [num_ops, F], objectives [2, F], low/high [F] float64.
inline void check_pareto_args(const at::Tensor& op_features, const at::Tensor& objectives,
                              const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                              int64_t zero_op, int64_t start, int64_t count) {
  TORCH_CHECK_VALUE(objectives.dim() == 2 && objectives.size(0) == 2,
                    "objectives must be [2, F] (two rows of coefficients), got ",
                    objectives.sizes());
  check_scan_inputs(op_features, objectives, 0.0, &low, &high, num_nodes, zero_op, start, count);
}

}  // namespace nas::enumerate
