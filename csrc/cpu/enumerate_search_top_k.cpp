// CPU kernel of nas::enumerate_search_top_k: an exact top-k by branch and bound.
#include <map>

#include "cpu/enumerate_scan.h"
#include "enumerate_cancel.h"
#include "enumerate_search_top_k_checks.h"

namespace nas::enumerate::cpu {
namespace {

// Depth-first over the outer edges in index order (op code 0 first), so every cell of
// a later subtree has a higher index than every cell seen: a subtree is cut when no
// cell in it can score strictly better than the current k-th best, or when a
// constraint cannot hold anywhere in it. Leaves are whole inner blocks, scanned
// exactly like the exhaustive kernel (same sums in the same order, hence the same
// scores). Bounds are exact-arithmetic bounds widened by a rounding margin, so a cut
// never drops a cell the exhaustive scan would keep.
template <bool Largest>
struct Search {
  const Ctx& c;
  const double* lo;
  const double* hi;
  int64_t max_nodes;
  TopK<Largest, true> topk;
  std::vector<double> op_score;  // [K] coeffs . T[o]
  std::vector<double> feat_min, feat_max, feat_margin;
  double score_margin = 0.0;
  double max_abs_op = 0.0;
  int64_t nodes = 0, leaves = 0;
  std::vector<int32_t> oc;
  std::map<int64_t, std::vector<int32_t>> leaf_codes;  // leaf number -> outer codes
  std::vector<double> feat, score;
  std::vector<uint8_t> canon, keep;
  PassTable pass;  // the cell filters, checked at complete cells (the leaves' inner blocks)
  mutable std::vector<uint8_t> fits;  // [K] scratch of promising(): op o fits a free edge

  Search(const Ctx& ctx, const double* l, const double* h, int64_t k, int64_t maxn)
      : c(ctx), lo(l), hi(h), max_nodes(maxn), topk{{ctx.F, l, h}, k}, pass(ctx) {
    feat_min.assign(c.F, std::numeric_limits<double>::infinity());
    feat_max.assign(c.F, -std::numeric_limits<double>::infinity());
    feat_margin.assign(c.F, 0.0);
    for (int o = 0; o < c.K; ++o) {
      const double s = dot(c.coeffs, c.T + o * c.F, c.F, 0.0);
      op_score.push_back(s);
      max_abs_op = std::max(max_abs_op, std::fabs(s));
      for (int f = 0; f < c.F; ++f) {
        feat_min[f] = std::min(feat_min[f], c.T[o * c.F + f]);
        feat_max[f] = std::max(feat_max[f], c.T[o * c.F + f]);
      }
    }
    // Rounding: a feature sum of E terms is within E * u * S_f of its exact value
    // (S_f = E * max |T[., f]|); the score and the bound add F + a few more roundings.
    const double u = std::ldexp(1.0, -53);
    const double slack = 4.0 * (c.E + c.F + 8);
    double scale = std::fabs(c.bias) + c.E * max_abs_op;
    for (int f = 0; f < c.F; ++f) {
      const double sf = c.E * std::max(std::fabs(feat_min[f]), std::fabs(feat_max[f]));
      feat_margin[f] = slack * u * sf;
      scale += std::fabs(c.coeffs[f]) * sf;
    }
    score_margin = slack * u * scale;
    oc.assign(static_cast<size_t>(c.outer) + 1, 0);
    feat.assign(static_cast<size_t>(c.F * kTile), 0.0);
    score.assign(kTile, 0.0);
    canon.assign(kTile, 1);
    keep.assign(kTile, 1);
    fits.assign(c.K, 0);
  }

  // May a subtree with `depth` outer edges fixed (feature sums pf) hold a winner?
  // Its cells' features lie in pf + rest * [feat_min, feat_max]; an op can sit on a
  // remaining edge only if the constraints still hold with it there and the extreme
  // ops elsewhere, so the score bound takes the best such op per remaining edge.
  bool promising(int depth, const double* pf) const {
    const int rest = c.E - depth;
    for (int f = 0; f < c.F; ++f) {
      if (pf[f] + rest * feat_min[f] - feat_margin[f] > hi[f]) return false;
      if (pf[f] + rest * feat_max[f] + feat_margin[f] < lo[f]) return false;
    }
    if (static_cast<int64_t>(topk.heap.size()) < topk.k || rest == 0) return true;
    double free_best = 0.0;
    bool any = false;
    for (int o = 0; o < c.K; ++o) {
      bool ok = true;
      for (int f : c.need) {
        const double x = c.T[o * c.F + f];
        ok = ok && pf[f] + x + (rest - 1) * feat_min[f] - feat_margin[f] <= hi[f] &&
             pf[f] + x + (rest - 1) * feat_max[f] + feat_margin[f] >= lo[f];
      }
      fits[o] = ok;
      if (!ok) continue;
      free_best =
          !any ? op_score[o]
               : (Largest ? std::max(free_best, op_score[o]) : std::min(free_best, op_score[o]));
      any = true;
    }
    if (!any) return false;
    double rest_bound = rest * free_best;
    // Lagrangian bounds, one per finite bound (sum_e a[o_e] <= b over the remaining
    // edges): for any lambda >= 0, max sum s <= rest * max_o (s_o - lambda a_o) + lambda b
    // (min: >= rest * min_o (s_o + lambda a_o) - lambda b). The best lambda is 0 or a
    // breakpoint between two ops; every candidate gives a valid bound.
    for (int f : c.need) {
      for (int dir = 0; dir < 2; ++dir) {
        const double lim = dir == 0 ? hi[f] : lo[f];
        if (!std::isfinite(lim)) continue;
        const double sign = dir == 0 ? 1.0 : -1.0;
        const double b = sign * (lim - pf[f]) + feat_margin[f];
        double amax = 0.0;
        for (int o = 0; o < c.K; ++o) amax = std::max(amax, std::fabs(c.T[o * c.F + f]));
        for (int o1 = 0; o1 < c.K; ++o1) {
          for (int o2 = o1; o2 < c.K; ++o2) {
            if (!fits[o1] || !fits[o2]) continue;
            const double da = sign * (c.T[o1 * c.F + f] - c.T[o2 * c.F + f]);
            const double lam =
                o1 == o2 ? 0.0 : (da != 0.0 ? std::fabs((op_score[o1] - op_score[o2]) / da) : -1.0);
            if (lam < 0.0 || !std::isfinite(lam)) continue;
            double ext = 0.0;
            bool first = true;
            for (int o = 0; o < c.K; ++o) {
              if (!fits[o]) continue;
              const double a = sign * c.T[o * c.F + f];
              const double v = Largest ? op_score[o] - lam * a : op_score[o] + lam * a;
              ext = first ? v : (Largest ? std::max(ext, v) : std::min(ext, v));
              first = false;
            }
            const double err =
                4.0 * (c.E + 8) * std::ldexp(1.0, -53) *
                (rest * (max_abs_op + lam * amax) + lam * std::fabs(b) + std::fabs(rest * ext));
            const double val = Largest ? rest * ext + lam * b + err : rest * ext - lam * b - err;
            rest_bound = Largest ? std::min(rest_bound, val) : std::max(rest_bound, val);
          }
        }
      }
    }
    const double bound = dot(c.coeffs, pf, c.F, c.bias) + rest_bound;
    const double thr = topk.heap.front().s;
    return Largest ? bound + score_margin > thr : bound - score_margin < thr;
  }

  void dfs(int depth, const double* pf) {
    TORCH_CHECK(++nodes <= max_nodes,
                "enumerate_search_top_k: the search expanded more than max_nodes = ", max_nodes,
                " nodes; raise max_nodes, tighten the constraints, or scan a smaller space");
    TORCH_CHECK((nodes & 4095) != 0 || !cancel_flag().load(std::memory_order_relaxed),
                "enumerate_search_top_k: cancelled after ", nodes, " nodes");
    if (depth == c.outer) {
      const int64_t leaf = leaves++;
      const size_t before = topk.heap.size();
      const int64_t before_idx = before ? topk.heap.front().i : -1;
      const double ps = dot(c.coeffs, pf, c.F, c.bias);
      if (c.filter) pass.set_prefix(c, oc.data(), leaf);
      for (int64_t t0 = 0; t0 < c.M; t0 += kTile) {
        const int64_t n = std::min<int64_t>(kTile, c.M - t0);
        for (int64_t j = 0; j < n; ++j) score[j] = ps + c.inner_score[t0 + j];
        for (int f : c.need)
          for (int64_t j = 0; j < n; ++j) feat[f * kTile + j] = pf[f] + c.inner[f * c.M + t0 + j];
        if (c.filter)
          for (int64_t j = 0; j < n; ++j) keep[j] = pass.get(c, c.inner_nz[t0 + j]);
        topk.tile(leaf * c.M + t0, score.data(), feat.data(), canon.data(),
                  c.filter ? keep.data() : nullptr, n);
      }
      // Any insertion changes the heap's size or its top (indices are unique).
      if (topk.heap.size() != before || (before && topk.heap.front().i != before_idx))
        leaf_codes.emplace(leaf, std::vector<int32_t>(oc.begin(), oc.begin() + c.outer));
      return;
    }
    std::vector<double> child(c.F);
    for (int o = 0; o < c.K; ++o) {
      for (int f = 0; f < c.F; ++f) child[f] = pf[f] + c.T[o * c.F + f];
      if (!promising(depth + 1, child.data())) continue;
      oc[depth] = o;
      dfs(depth + 1, child.data());
    }
  }
};

template <bool Largest>
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_search(const Ctx& c, const double* lp,
                                                          const double* hp, int64_t k,
                                                          int64_t max_nodes,
                                                          const at::TensorOptions& opts) {
  Search<Largest> s(c, lp, hp, k, max_nodes);
  std::vector<double> pf(c.F, 0.0);
  if (s.promising(0, pf.data())) s.dfs(0, pf.data());
  std::vector<Entry> best = merge_topk<Largest>(s.topk.heap, k);
  const int64_t n = static_cast<int64_t>(best.size());
  at::Tensor codes = at::empty({n, c.E}, opts.dtype(at::kLong));
  at::Tensor sc = at::empty({n}, opts.dtype(at::kDouble));
  at::Tensor ft = at::empty({n, c.F}, opts.dtype(at::kDouble));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t leaf = best[r].i / c.M, j = best[r].i % c.M;
    const auto it = s.leaf_codes.find(leaf);
    TORCH_CHECK(it != s.leaf_codes.end(), "enumerate_search_top_k: lost the codes of leaf ", leaf);
    int64_t* row = codes.mutable_data_ptr<int64_t>() + r * c.E;
    for (int e = 0; e < c.outer; ++e) row[e] = it->second[e];
    for (int t = 0; t < c.m; ++t) row[c.outer + t] = c.inner_code[t * c.M + j];
    eval_cell(c, it->second.data(), j, ft.mutable_data_ptr<double>() + r * c.F,
              sc.mutable_data_ptr<double>() + r, nullptr);
  }
  return {codes, sc, ft};
}

}  // namespace

SearchTopKOut enumerate_search_top_k_run(const SearchTopKArgs& a) {
  const Scan s = make_scan(a.op_features, a.coeffs, 1, a.bias, &a.low, &a.high, a.num_nodes,
                           a.zero_op, false, {a.connected_only, a.distinct});
  const auto opts = a.op_features.options();
  return a.largest ? run_search<true>(s.c, s.lp, s.hp, a.k, a.max_nodes, opts)
                   : run_search<false>(s.c, s.lp, s.hp, a.k, a.max_nodes, opts);
}

TORCH_LIBRARY_IMPL(nas, CPU, m) {
  m.impl("enumerate_search_top_k", &search_top_k_entry<enumerate_search_top_k_run>);
}

}  // namespace nas::enumerate::cpu
