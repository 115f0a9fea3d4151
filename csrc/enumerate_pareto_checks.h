// Entry of nas::enumerate_pareto, shared by its CPU and CUDA registrations: the
// arguments, their checks, and the one registered signature.
#pragma once
#include <tuple>

#include "enumerate_checks.h"

namespace nas::enumerate {

// The op's arguments, in the schema's order (csrc/ops.cpp).
struct ParetoArgs {
  const at::Tensor& op_features;  // [num_ops, F] float64
  const at::Tensor& objectives;   // [2, F] float64: objective r = objectives[r] . features
  const at::Tensor& low;          // [F] float64, -inf for none
  const at::Tensor& high;         // [F] float64, +inf for none
  int64_t num_nodes, zero_op;
  bool prune_dead;
  int64_t start, count;
  bool connected_only, distinct;
};

inline void check_pareto_args(const ParetoArgs& a) {
  TORCH_CHECK_VALUE(a.objectives.dim() == 2 && a.objectives.size(0) == 2,
                    "objectives must be [2, F] (two rows of coefficients), got ",
                    a.objectives.sizes());
  check_scan_inputs(a.op_features, a.objectives, 0.0, &a.low, &a.high, a.num_nodes, a.zero_op,
                    a.start, a.count);
}

using ParetoOut = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // indices, values, counts

// The CPU kernel (csrc/cpu/enumerate_pareto.cpp), which the CUDA registration runs on
// host copies: the front is a sequential merge.
namespace cpu {
ParetoOut enumerate_pareto_run(const ParetoArgs& a);
}

// What each device registers: the checks, then its kernel Run.
template <ParetoOut (*Run)(const ParetoArgs&)>
ParetoOut pareto_entry(const at::Tensor& op_features, const at::Tensor& objectives,
                       const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                       int64_t zero_op, bool prune_dead, int64_t start, int64_t count,
                       bool connected_only, bool distinct) {
  const ParetoArgs a{op_features, objectives, low,   high,           num_nodes, zero_op,
                     prune_dead,  start,      count, connected_only, distinct};
  check_pareto_args(a);
  return Run(a);
}

}  // namespace nas::enumerate
