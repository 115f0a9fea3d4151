// CPU kernel of nas::enumerate_search_top_k: an exact top-k by branch and bound.
#include <map>

#include "cpu/enumerate_scan.h"
#include "cpu/enumerate_search_bound.h"
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
  int64_t max_nodes;
  RelaxedBound<Largest> bound;
  TopK<Largest, true> topk;
  int64_t nodes = 0, leaves = 0;
  std::vector<int32_t> oc;
  std::map<int64_t, std::vector<int32_t>> leaf_codes;  // leaf number -> outer codes
  std::vector<double> feat, score;
  std::vector<uint8_t> canon, keep;
  PassTable pass;  // the cell filters, checked at complete cells (the leaves' inner blocks)
  // Under a filter: per inner zero pattern q, the best inner score of its inner cells
  // (none: +-inf). A leaf whose passing patterns cannot beat the k-th best is skipped
  // without scanning its M cells: fl(ps + x) is monotone in x, so fl(ps + best[q]) is
  // the best score any of q's cells reaches at this prefix, exactly.
  std::vector<double> qbest;

  Search(const Ctx& ctx, const double* l, const double* h, int64_t k, int64_t maxn)
      : c(ctx), max_nodes(maxn), bound(ctx, l, h), topk{{ctx.F, l, h}, k}, pass(ctx) {
    oc.assign(static_cast<size_t>(c.outer) + 1, 0);
    feat.assign(static_cast<size_t>(c.F * kTile), 0.0);
    score.assign(kTile, 0.0);
    canon.assign(kTile, 1);
    keep.assign(kTile, 1);
    if (c.filter) {
      const double none = Largest ? -std::numeric_limits<double>::infinity()
                                  : std::numeric_limits<double>::infinity();
      qbest.assign(size_t{1} << c.m, none);
      for (int64_t j = 0; j < c.M; ++j) {
        double& b = qbest[c.inner_nz[j]];
        const double s = c.inner_score[j];
        if (Largest ? s > b : s < b) b = s;
      }
    }
  }

  // Whether some cell of this leaf that passes the filters could enter the full top-k.
  bool leaf_can_improve(double ps) {
    if (static_cast<int64_t>(topk.heap.size()) < topk.k) return true;
    const double thr = topk.heap.front().s;
    for (uint32_t q = 0; q < qbest.size(); ++q) {
      if (std::isinf(qbest[q]) || !pass.get(c, q)) continue;
      const double s = ps + qbest[q];  // the scan's own expression for a cell's score
      if (Largest ? s > thr : s < thr) return true;
    }
    return false;
  }

  bool promising(int depth, const double* pf) const {
    const bool full = static_cast<int64_t>(topk.heap.size()) == topk.k;
    return bound.promising(depth, pf, full, full ? topk.heap.front().s : 0.0, false);
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
      if (c.filter) {
        pass.set_prefix(c, oc.data(), leaf);
        if (!leaf_can_improve(ps)) return;
      }
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

// Exact sums (integer features): the search over multisets of op classes, then the
// winners expanded into cells in (score, index) order.
template <bool Largest>
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_class_search(const Ctx& c, const double* lp,
                                                                const double* hp, int64_t k,
                                                                int64_t max_nodes,
                                                                const at::TensorOptions& opts) {
  ClassSearch<Largest> s(c, lp, hp, k, max_nodes);
  std::vector<double> pf(c.F, 0.0);
  s.dfs(0, 0, pf.data());
  const auto best = s.expand();
  const int64_t n = static_cast<int64_t>(best.size());
  at::Tensor codes = at::empty({n, c.E}, opts.dtype(at::kLong));
  at::Tensor sc = at::empty({n}, opts.dtype(at::kDouble));
  at::Tensor ft = at::empty({n, c.F}, opts.dtype(at::kDouble));
  for (int64_t r = 0; r < n; ++r) {
    const auto& [seq, j] = best[r];
    int64_t* row = codes.mutable_data_ptr<int64_t>() + r * c.E;
    for (int e = 0; e < c.outer; ++e) row[e] = seq[e];
    for (int t = 0; t < c.m; ++t) row[c.outer + t] = c.inner_code[t * c.M + j];
    eval_cell(c, seq.data(), j, ft.mutable_data_ptr<double>() + r * c.F,
              sc.mutable_data_ptr<double>() + r, nullptr);
  }
  return {codes, sc, ft};
}

// Whether every cell of codes [n, E] passes the cell filters.
inline bool all_pass(const Ctx& c, const at::Tensor& codes) {
  const int64_t* p = codes.const_data_ptr<int64_t>();
  for (int64_t r = 0; r < codes.size(0); ++r) {
    uint64_t nz = 0;
    for (int e = 0; e < c.E; ++e)
      if (p[r * c.E + e] != c.zero_op) nz |= uint64_t{1} << e;
    if (!cell_passes(nz, c.N, c.E, c.src, c.dst, c.connected_only, c.distinct)) return false;
  }
  return true;
}

template <bool Largest>
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_search(const Ctx& c, const double* lp,
                                                          const double* hp, int64_t k,
                                                          int64_t max_nodes,
                                                          const at::TensorOptions& opts) {
  if (exact_sums(c)) {
    // The class search ranks multisets of ops and knows nothing of the cell filters
    // (where the zero ops sit). Its unfiltered top-k is also the filtered one when
    // every cell in it passes (the filtered top-k is the first k passing cells of the
    // same order); otherwise the cell search below checks the filters cell by cell.
    auto out = run_class_search<Largest>(c, lp, hp, k, max_nodes, opts);
    if (!c.filter || all_pass(c, std::get<0>(out))) return out;
  }
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
