// Entry of nas::enumerate_score_cells, shared by its CPU and CUDA registrations: the
// arguments, their checks, and the one registered signature.
#pragma once
#include <tuple>

#include "enumerate_checks.h"

namespace nas::enumerate {

// The op's arguments, in the schema's order (csrc/ops.cpp).
struct ScoreCellsArgs {
  const at::Tensor& op_features;  // [num_ops, F] float64
  const at::Tensor& coeffs;       // [F] float64
  double bias;
  int64_t num_nodes, zero_op;
  bool prune_dead;
  int64_t start, count;  // cells [start, start + count)
};

inline void check_score_cells_args(const ScoreCellsArgs& a) {
  check_coeffs_1d(a.coeffs);
  check_scan_inputs(a.op_features, a.coeffs, a.bias, nullptr, nullptr, a.num_nodes, a.zero_op,
                    a.start, a.count);
}

using ScoreCellsOut = std::tuple<at::Tensor, at::Tensor>;  // features [count, F], scores [count]

// What each device registers: the checks, then its kernel Run.
template <ScoreCellsOut (*Run)(const ScoreCellsArgs&)>
ScoreCellsOut score_cells_entry(const at::Tensor& op_features, const at::Tensor& coeffs,
                                double bias, int64_t num_nodes, int64_t zero_op, bool prune_dead,
                                int64_t start, int64_t count) {
  const ScoreCellsArgs a{op_features, coeffs, bias, num_nodes, zero_op, prune_dead, start, count};
  check_score_cells_args(a);
  return Run(a);
}

}  // namespace nas::enumerate
