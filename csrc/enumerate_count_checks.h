// Entry of nas::enumerate_count, shared by its CPU and CUDA registrations: the
// arguments, their checks, and the one registered signature.
#pragma once
#include <tuple>

#include "enumerate_checks.h"

namespace nas::enumerate {

// The op's arguments (csrc/ops.cpp): the scan's, then the histogram's and filters.
struct CountArgs : BoundedScanArgs {
  int64_t bins;
  double hist_min, hist_max;
  bool connected_only, distinct;
};

// bins >= 0 over a finite [hist_min, hist_max) when bins > 0.
inline void check_count_args(const CountArgs& a) {
  TORCH_CHECK_VALUE(a.bins >= 0, "bins must be >= 0, got ", a.bins);
  if (a.bins > 0)
    TORCH_CHECK_VALUE(
        std::isfinite(a.hist_min) && std::isfinite(a.hist_max) && a.hist_min < a.hist_max,
        "histogram range must be finite with hist_min < hist_max, got [", a.hist_min, ", ",
        a.hist_max, "]");
  check_bounded_scan(a);
}

using CountOut = std::tuple<at::Tensor, at::Tensor>;  // hist [bins + 2], totals [2]

// What each device registers: the checks, then its kernel Run.
template <CountOut (*Run)(const CountArgs&)>
CountOut count_entry(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
                     const at::Tensor& low, const at::Tensor& high, int64_t num_nodes,
                     int64_t zero_op, bool prune_dead, int64_t start, int64_t count, int64_t bins,
                     double hist_min, double hist_max, bool connected_only, bool distinct) {
  const CountArgs a{
      {op_features, coeffs, bias, low, high, num_nodes, zero_op, prune_dead, start, count},
      bins,
      hist_min,
      hist_max,
      connected_only,
      distinct};
  check_count_args(a);
  return Run(a);
}

}  // namespace nas::enumerate
