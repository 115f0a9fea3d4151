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

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*, const uint8_t*,
            int64_t n) {
    const int64_t r0 = idx0 - start;
    for (int64_t j = 0; j < n; ++j) score_out[r0 + j] = score[j];
    for (int f = 0; f < F; ++f)
      for (int64_t j = 0; j < n; ++j) feat_out[(r0 + j) * F + f] = feat[f * kTile + j];
  }
};

ScoreCellsOut enumerate_score_cells_cpu(const ScoreCellsArgs& a) {
  const Scan s = make_scan(a.op_features, a.coeffs, 1, a.bias, nullptr, nullptr, a.num_nodes,
                           a.zero_op, a.prune_dead);
  const Ctx& c = s.c;
  at::Tensor feats = at::empty({a.count, c.F}, a.op_features.options());
  at::Tensor scores = at::empty({a.count}, a.op_features.options());
  Writer proto{c.F, a.start, feats.mutable_data_ptr<double>(), scores.mutable_data_ptr<double>()};
  if (a.count > 0) parallel_scan<Writer>(c, a.start, a.count, [&] { return proto; });
  return {feats, scores};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) {
  m.impl("enumerate_score_cells", &score_cells_entry<enumerate_score_cells_cpu>);
}

}  // namespace nas::enumerate::cpu
