// Entry of nas::enumerate_search_top_k, shared by its CPU and CUDA registrations: the
// arguments, their checks, and the one registered signature.
#pragma once
#include <tuple>

#include "enumerate_checks.h"

namespace nas::enumerate {

// The op's arguments (csrc/ops.cpp) as a scan of the whole space (zero_op serves the
// filters; no prune_dead, no range), then the search's.
struct SearchTopKArgs : BoundedScanArgs {
  int64_t k;
  bool largest;
  int64_t max_nodes;
  bool connected_only, distinct;
};

// k, max_nodes >= 1.
inline void check_search_top_k_args(const SearchTopKArgs& a) {
  TORCH_CHECK_VALUE(a.k >= 1, "k must be >= 1, got ", a.k);
  TORCH_CHECK_VALUE(a.max_nodes >= 1, "max_nodes must be >= 1, got ", a.max_nodes);
  check_bounded_scan(a);
}

using SearchTopKOut = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // codes, scores, features

// The CPU kernel (csrc/cpu/enumerate_search_top_k.cpp), which the CUDA registration
// runs on host copies: the search is depth-first.
namespace cpu {
SearchTopKOut enumerate_search_top_k_run(const SearchTopKArgs& a);
}

// What each device registers: the checks, then its kernel Run.
template <SearchTopKOut (*Run)(const SearchTopKArgs&)>
SearchTopKOut search_top_k_entry(const at::Tensor& op_features, const at::Tensor& coeffs,
                                 double bias, const at::Tensor& low, const at::Tensor& high,
                                 int64_t num_nodes, int64_t k, bool largest, int64_t max_nodes,
                                 int64_t zero_op, bool connected_only, bool distinct) {
  const SearchTopKArgs a{{op_features, coeffs, bias, low, high, num_nodes, zero_op, false, 0, 0},
                         k,
                         largest,
                         max_nodes,
                         connected_only,
                         distinct};
  check_search_top_k_args(a);
  return Run(a);
}

}  // namespace nas::enumerate
