// CPU kernel of nas::enumerate_count: qualifying cells, distinct pruned cells, a score
// histogram.
#include "cpu/enumerate_scan.h"
#include "enumerate_count_checks.h"

namespace nas::enumerate::cpu {
namespace {

// Bin of score s: 0 below hmin, bins + 1 at or above hmax, else
// 1 + min(bins - 1, floor((s - hmin) / (hmax - hmin) * bins)).
inline int64_t hist_bin(double s, int64_t bins, double hmin, double hmax) {
  if (s < hmin) return 0;
  if (!(s < hmax)) return bins + 1;
  const double t = (s - hmin) / (hmax - hmin) * static_cast<double>(bins);
  return 1 + std::min<int64_t>(bins - 1, static_cast<int64_t>(t));
}

template <bool HasCons, bool Hist>
struct Counter : Bounds {
  int64_t bins = 0;
  double hmin = 0.0, hmax = 1.0;
  int64_t count = 0, distinct = 0;
  std::vector<int64_t> hist;  // [bins + 2]: below hmin, the bins, at or above hmax
  uint8_t ok[kTile];

  void tile(int64_t, const double* score, const double* feat, const uint8_t* canon,
            const uint8_t* keep, int64_t n) {
    if (HasCons) {
      constraint_tile(feat, n, F, lo, hi, ok);
    } else {
      for (int64_t j = 0; j < n; ++j) ok[j] = 1;
    }
    if (keep)
      for (int64_t j = 0; j < n; ++j) ok[j] &= keep[j];
    int64_t cnt = 0, dis = 0;
    for (int64_t j = 0; j < n; ++j) {
      cnt += ok[j];
      dis += ok[j] & canon[j];
    }
    count += cnt;
    distinct += dis;
    if (Hist)
      for (int64_t j = 0; j < n; ++j)
        if (ok[j]) ++hist[hist_bin(score[j], bins, hmin, hmax)];
  }
};

template <bool HasCons, bool Hist>
std::tuple<std::vector<int64_t>, int64_t, int64_t> run_count(const Ctx& c, int64_t start,
                                                             int64_t count, const double* lo,
                                                             const double* hi, int64_t bins,
                                                             double hmin, double hmax) {
  using V = Counter<HasCons, Hist>;
  auto parts = parallel_scan<V>(c, start, count, [&] {
    V v{{c.F, lo, hi}, bins, hmin, hmax};
    v.hist.assign(static_cast<size_t>(bins + 2), 0);
    return v;
  });
  std::vector<int64_t> hist(static_cast<size_t>(bins + 2), 0);
  int64_t n = 0, d = 0;
  for (auto& v : parts) {
    n += v.count;
    d += v.distinct;
    for (int64_t b = 0; b < bins + 2; ++b) hist[b] += v.hist[b];
  }
  return {hist, n, d};
}

CountOut enumerate_count_cpu(const CountArgs& a) {
  const Scan s = make_scan(a.op_features, a.coeffs, 1, a.bias, &a.low, &a.high, a.num_nodes,
                           a.zero_op, a.prune_dead, {a.connected_only, a.distinct});
  const Ctx& c = s.c;
  const int64_t start = a.start, count = a.count, bins = a.bins;
  const double hist_min = a.hist_min, hist_max = a.hist_max;
  std::tuple<std::vector<int64_t>, int64_t, int64_t> r;
  if (bins > 0)
    r = s.has_cons ? run_count<true, true>(c, start, count, s.lp, s.hp, bins, hist_min, hist_max)
                   : run_count<false, true>(c, start, count, s.lp, s.hp, bins, hist_min, hist_max);
  else
    r = s.has_cons ? run_count<true, false>(c, start, count, s.lp, s.hp, 0, 0.0, 1.0)
                   : run_count<false, false>(c, start, count, s.lp, s.hp, 0, 0.0, 1.0);
  const auto& hv = std::get<0>(r);
  at::Tensor hist = at::empty({bins + 2}, a.op_features.options().dtype(at::kLong));
  std::copy(hv.begin(), hv.end(), hist.mutable_data_ptr<int64_t>());
  at::Tensor totals = at::empty({2}, a.op_features.options().dtype(at::kLong));
  totals.mutable_data_ptr<int64_t>()[0] = std::get<1>(r);
  totals.mutable_data_ptr<int64_t>()[1] = std::get<2>(r);
  return {hist, totals};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) { m.impl("enumerate_count", &count_entry<enumerate_count_cpu>); }

}  // namespace nas::enumerate::cpu
