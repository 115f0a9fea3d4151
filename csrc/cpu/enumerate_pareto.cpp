// CPU kernel of nas::enumerate_pareto: the exact Pareto front of two scores.
#include "cpu/enumerate_scan.h"
#include "enumerate_pareto_checks.h"

namespace nas::enumerate::cpu {
namespace {

struct PEntry {
  double a, b;  // objectives, both minimised
  int64_t i;    // lowest index with these objectives
  int64_t n;    // cells with these objectives
};

// The exact non-dominated set of distinct objective pairs, kept sorted by a
// ascending (b then strictly descending). Cells are visited in increasing index order.
template <bool HasCons>
struct Pareto : Bounds {
  std::vector<PEntry> front;
  uint8_t ok[kTile];

  void insert(double a, double b, int64_t i) {
    auto it = std::upper_bound(front.begin(), front.end(), a,
                               [](double x, const PEntry& e) { return x < e.a; });
    if (it != front.begin()) {
      PEntry& prev = *(it - 1);
      if (prev.b <= b) {
        if (prev.a == a && prev.b == b) ++prev.n;  // same objectives: count it
        return;                                    // else dominated
      }
      if (prev.a == a) it = front.erase(it - 1);  // same a, larger b: dominated by the new
    }
    auto last = it;
    while (last != front.end() && last->b >= b) ++last;
    it = front.erase(it, last);
    front.insert(it, PEntry{a, b, i, 1});
  }

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*,
            const uint8_t* keep, int64_t n) {
    if (HasCons) constraint_tile(feat, n, F, lo, hi, ok);
    if (HasCons && keep)
      for (int64_t j = 0; j < n; ++j) ok[j] &= keep[j];
    for (int64_t j = 0; j < n; ++j)
      if (!HasCons || ok[j]) insert(score[j], score[kTile + j], idx0 + j);
  }
};

template <bool HasCons>
std::vector<PEntry> run_pareto(const Ctx& c, int64_t start, int64_t count, const double* lo,
                               const double* hi) {
  using V = Pareto<HasCons>;
  auto parts = parallel_scan<V>(c, start, count, [&] { return V{{c.F, lo, hi}}; });
  std::vector<PEntry> all;
  for (auto& v : parts) all.insert(all.end(), v.front.begin(), v.front.end());
  std::sort(all.begin(), all.end(), [](const PEntry& x, const PEntry& y) {
    if (x.a != y.a) return x.a < y.a;
    if (x.b != y.b) return x.b < y.b;
    return x.i < y.i;
  });
  // A point on the global front is on the front of every chunk that holds it, so its
  // per-chunk counts add up to its total.
  std::vector<PEntry> out;
  for (size_t r = 0; r < all.size();) {
    size_t s = r;
    PEntry g = all[r];
    g.n = 0;
    for (; s < all.size() && all[s].a == g.a && all[s].b == g.b; ++s) g.n += all[s].n;
    if (out.empty() || g.b < out.back().b) out.push_back(g);
    r = s;
  }
  return out;
}

}  // namespace

ParetoOut enumerate_pareto_run(const ParetoArgs& a) {
  const Scan s = make_scan(a.op_features, a.objectives, 2, 0.0, &a.low, &a.high, a.num_nodes,
                           a.zero_op, a.prune_dead, {a.connected_only, a.distinct});
  const Ctx& c = s.c;
  const std::vector<PEntry> front = s.has_cons ? run_pareto<true>(c, a.start, a.count, s.lp, s.hp)
                                               : run_pareto<false>(c, a.start, a.count, s.lp, s.hp);
  const int64_t n = static_cast<int64_t>(front.size());
  const auto opts = a.op_features.options();
  at::Tensor idx = at::empty({n}, opts.dtype(at::kLong));
  at::Tensor val = at::empty({n, 2}, opts);
  at::Tensor mult = at::empty({n}, opts.dtype(at::kLong));
  for (int64_t r = 0; r < n; ++r) {
    idx.mutable_data_ptr<int64_t>()[r] = front[r].i;
    val.mutable_data_ptr<double>()[2 * r] = front[r].a;
    val.mutable_data_ptr<double>()[2 * r + 1] = front[r].b;
    mult.mutable_data_ptr<int64_t>()[r] = front[r].n;
  }
  return {idx, val, mult};
}

TORCH_LIBRARY_IMPL(nas, CPU, m) { m.impl("enumerate_pareto", &pareto_entry<enumerate_pareto_run>); }

}  // namespace nas::enumerate::cpu
