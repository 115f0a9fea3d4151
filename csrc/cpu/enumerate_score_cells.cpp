// CPU kernel of nas::enumerate_score_cells: features and scores of a range of cells.
#include "cpu/enumerate_scan.h"
#include "enumerate_score_cells_checks.h"

namespace nas::enumerate::cpu {
namespace {

struct Writer {
  int F = 0;
  int64_t start = 0;
  double* feat_out = nullptr;   // [count, F]
  double* score_out = nullptr;  // [count]

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*, int64_t n) {
    const int64_t r0 = idx0 - start;
    for (int64_t j = 0; j < n; ++j) score_out[r0 + j] = score[j];
    for (int f = 0; f < F; ++f)
      for (int64_t j = 0; j < n; ++j) feat_out[(r0 + j) * F + f] = feat[f * kTile + j];
  }
};

std::tuple<at::Tensor, at::Tensor> enumerate_score_cells_cpu(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& coeffs,       // [F] float64
    double bias, int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start,
    int64_t count) {
  check_score_cells_args(op_features, coeffs, bias, num_nodes, zero_op, start, count);
  const Scan s =
      make_scan(op_features, coeffs, 1, bias, nullptr, nullptr, num_nodes, zero_op, prune_dead);
  const Ctx& c = s.c;
  at::Tensor feats = at::empty({count, c.F}, op_features.options());
  at::Tensor scores = at::empty({count}, op_features.options());
  Writer proto{c.F, start, feats.mutable_data_ptr<double>(), scores.mutable_data_ptr<double>()};
  if (count > 0) parallel_scan<Writer>(c, start, count, [&] { return proto; });
  return {feats, scores};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) { m.impl("enumerate_score_cells", &enumerate_score_cells_cpu); }

}  // namespace nas::enumerate::cpu
