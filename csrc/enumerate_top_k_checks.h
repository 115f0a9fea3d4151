// Entry of nas::enumerate_top_k, shared by its CPU and CUDA registrations: the
// arguments, their checks, and the one registered signature.
#pragma once
#include <tuple>

#include "enumerate_checks.h"

namespace nas::enumerate {

// The op's arguments (csrc/ops.cpp): the scan's, then the query's.
struct TopKArgs : BoundedScanArgs {
  int64_t k;
  bool largest, connected_only, distinct;
};

inline void check_top_k_args(const TopKArgs& a) {
  TORCH_CHECK_VALUE(a.k >= 1, "k must be >= 1, got ", a.k);
  check_bounded_scan(a);
}

using TopKOut = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // indices, scores, features

// What each device registers: the checks, then its kernel Run.
template <TopKOut (*Run)(const TopKArgs&)>
TopKOut top_k_entry(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
                    const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                    int64_t zero_op, bool prune_dead, int64_t start, int64_t count, int64_t k,
                    bool largest, bool connected_only, bool distinct) {
  const TopKArgs a{
      {op_features, coeffs, bias, low, high, num_nodes, zero_op, prune_dead, start, count},
      k,
      largest,
      connected_only,
      distinct};
  check_top_k_args(a);
  return Run(a);
}

}  // namespace nas::enumerate
