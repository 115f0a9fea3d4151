// Bounds and the exact-sum search of nas::enumerate_search_top_k (CPU; used by
// csrc/cpu/enumerate_search_top_k.cpp).
//
// RelaxedBound: a real-arithmetic bound on the best score in a subtree (prefix cost plus
// a Lagrangian relaxation of each finite constraint over the remaining edges), widened
// by a rounding margin so that a cut never drops a cell the exhaustive scan would keep.
//
// ClassSearch: when every op feature is an integer and no feature sum can pass 2**53,
// every sum is exact, so a cell's outer feature sums depend only on the multiset of its
// outer ops, and ops with bitwise identical rows are interchangeable. The search then
// walks multisets of op classes (a class: ops with identical rows) instead of cells; at
// a multiset the outer score is exact and each inner cell is scanned as the exhaustive
// kernel scans it (same additions, hence the same score bits), bounded exactly by
// monotonicity of rounding. Each (multiset, score) stands for all the concrete cells
// that arrange it, and the top-k is expanded afterwards in index order: exact ties
// cost one visit per multiset instead of one per cell.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <queue>
#include <vector>

#include "cpu/enumerate_scan.h"
#include "enumerate_cancel.h"

namespace nas::enumerate::cpu {

template <bool Largest>
inline bool worse_score(double a, double b) {
  return Largest ? a < b : a > b;
}

template <bool Largest>
struct RelaxedBound {
  const Ctx& c;
  const double* lo;
  const double* hi;
  std::vector<double> op_score;  // [K] coeffs . T[o]
  std::vector<double> feat_min, feat_max, feat_margin;
  double score_margin = 0.0;
  double max_abs_op = 0.0;
  mutable std::vector<uint8_t> fits;  // [K] scratch of promising(): op o fits a free edge

  RelaxedBound(const Ctx& ctx, const double* l, const double* h) : c(ctx), lo(l), hi(h) {
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
    fits.assign(c.K, 0);
  }

  // May a subtree with `depth` edges fixed (feature sums pf) hold a cell that scores
  // strictly better than thr (with ties: at least as well)? full: thr is set (k kept).
  // Its cells' features lie in pf + rest * [feat_min, feat_max]; an op can sit on a
  // remaining edge only if the constraints still hold with it there and the extreme
  // ops elsewhere, so the score bound takes the best such op per remaining edge.
  bool promising(int depth, const double* pf, bool full, double thr, bool ties) const {
    const int rest = c.E - depth;
    for (int f = 0; f < c.F; ++f) {
      if (pf[f] + rest * feat_min[f] - feat_margin[f] > hi[f]) return false;
      if (pf[f] + rest * feat_max[f] + feat_margin[f] < lo[f]) return false;
    }
    if (!full || rest == 0) return true;
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
    const double top = Largest ? bound + score_margin : bound - score_margin;
    if (ties) return Largest ? top >= thr : top <= thr;
    return Largest ? top > thr : top < thr;
  }
};

// Every feature an integer and every partial sum of E of them below 2**53 in magnitude:
// then every feature sum is exact, whatever the order of its terms.
inline bool exact_sums(const Ctx& c) {
  for (int f = 0; f < c.F; ++f) {
    double amax = 0.0;
    for (int o = 0; o < c.K; ++o) {
      const double v = c.T[o * c.F + f];
      if (!std::isfinite(v) || v != std::nearbyint(v)) return false;
      amax = std::max(amax, std::fabs(v));
    }
    if (amax * c.E > std::ldexp(1.0, 53)) return false;
  }
  return true;
}

// min(a * b, cap) for 0 <= a, b, cap <= 2**62.
inline int64_t mul_cap(int64_t a, int64_t b, int64_t cap) {
  const __int128 p = static_cast<__int128>(a) * b;
  return p > cap ? cap : static_cast<int64_t>(p);
}

template <bool Largest>
struct ClassSearch {
  using Cmp = std::conditional_t<Largest, std::greater<double>, std::less<double>>;
  static constexpr int64_t kCap = int64_t{1} << 62;

  const Ctx& c;
  const double* lo;
  const double* hi;
  int64_t k, max_nodes;
  RelaxedBound<Largest> relax;
  std::vector<int> cls;                       // [K] class of op o
  std::vector<std::vector<int32_t>> members;  // [C] ops of the class, ascending
  std::vector<int> order;                     // classes, best op score first
  // Per constrained column: the inner cells' feature values ascending, and the best
  // inner score over each prefix (for a high bound) and each suffix (for a low one).
  struct Column {
    int f;
    std::vector<double> x, pre, suf;
  };
  std::vector<Column> cols;
  double inner_best = 0.0;
  // One entry per (multiset, score): its first (lowest) k inner cells with that score.
  struct Group {
    std::vector<int32_t> counts;  // [C] outer ops per class
    std::vector<int32_t> js;      // ascending
  };
  struct Level {
    int64_t count = 0;  // concrete cells with this score, capped at k
    std::vector<Group> groups;
  };
  std::map<double, Level, Cmp> levels;  // best score first
  int64_t total = 0;                    // sum of the levels' counts
  std::vector<std::vector<int64_t>> binom;
  std::vector<int32_t> counts;
  int64_t nodes = 0;
  std::vector<std::pair<double, int32_t>> hits;  // leaf scratch

  ClassSearch(const Ctx& ctx, const double* l, const double* h, int64_t kk, int64_t maxn)
      : c(ctx), lo(l), hi(h), k(kk), max_nodes(maxn), relax(ctx, l, h) {
    cls.assign(c.K, -1);
    for (int o = 0; o < c.K; ++o) {
      for (size_t q = 0; q < members.size() && cls[o] < 0; ++q) {
        const double* a = c.T + members[q][0] * c.F;
        const double* b = c.T + o * c.F;
        bool same = true;  // bitwise: 0.0 and -0.0 stay apart
        for (int f = 0; f < c.F; ++f)
          same = same && std::signbit(a[f]) == std::signbit(b[f]) && a[f] == b[f];
        if (same) {
          cls[o] = static_cast<int>(q);
          members[q].push_back(o);
        }
      }
      if (cls[o] < 0) {
        cls[o] = static_cast<int>(members.size());
        members.push_back({o});
      }
    }
    const int C = static_cast<int>(members.size());
    for (int q = 0; q < C; ++q) order.push_back(q);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return worse_score<Largest>(relax.op_score[members[b][0]], relax.op_score[members[a][0]]);
    });
    counts.assign(C, 0);
    binom.assign(c.E + 1, std::vector<int64_t>(c.E + 1, 0));
    for (int n = 0; n <= c.E; ++n) {
      binom[n][0] = 1;
      for (int r = 1; r <= n; ++r)
        binom[n][r] = std::min(kCap, binom[n - 1][r - 1] + binom[n - 1][r]);
    }
    inner_best = c.inner_score[0];
    for (int64_t j = 1; j < c.M; ++j)
      if (worse_score<Largest>(inner_best, c.inner_score[j])) inner_best = c.inner_score[j];
    for (int f : c.need) {
      std::vector<int64_t> idx(c.M);
      for (int64_t j = 0; j < c.M; ++j) idx[j] = j;
      const double* x = c.inner.data() + f * c.M;
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return x[a] < x[b]; });
      Column col{f, {}, {}, {}};
      col.x.resize(c.M);
      col.pre.resize(c.M);
      col.suf.resize(c.M);
      for (int64_t i = 0; i < c.M; ++i) col.x[i] = x[idx[i]];
      for (int64_t i = 0; i < c.M; ++i) {
        const double s = c.inner_score[idx[i]];
        col.pre[i] = i == 0 || worse_score<Largest>(col.pre[i - 1], s) ? s : col.pre[i - 1];
      }
      for (int64_t i = c.M - 1; i >= 0; --i) {
        const double s = c.inner_score[idx[i]];
        col.suf[i] = i == c.M - 1 || worse_score<Largest>(col.suf[i + 1], s) ? s : col.suf[i + 1];
      }
      cols.push_back(std::move(col));
    }
  }

  bool full() const { return total >= k; }
  double thr() const { return levels.rbegin()->first; }

  void tick() {
    TORCH_CHECK(++nodes <= max_nodes,
                "enumerate_search_top_k: the search expanded more than max_nodes = ", max_nodes,
                " nodes; raise max_nodes, tighten the constraints, or scan a smaller space");
    TORCH_CHECK((nodes & 4095) != 0 || !cancel_flag().load(std::memory_order_relaxed),
                "enumerate_search_top_k: cancelled after ", nodes, " nodes");
  }

  // Class order[ci] and later take the outer edges left after `depth`.
  void dfs(size_t ci, int depth, const double* pf) {
    tick();
    if (ci == order.size()) {
      if (depth == c.outer) leaf(pf);
      return;
    }
    const int q = order[ci];
    const int rest = c.outer - depth;
    const double* row = c.T + members[q][0] * c.F;
    std::vector<double> child(c.F);
    for (int n = rest; n >= (ci + 1 == order.size() ? rest : 0); --n) {
      for (int f = 0; f < c.F; ++f) child[f] = pf[f] + n * row[f];  // exact: integers
      const bool f_ = full();
      if (!relax.promising(depth + n, child.data(), f_, f_ ? thr() : 0.0, true)) continue;
      counts[q] = n;
      dfs(ci + 1, depth + n, child.data());
    }
    counts[q] = 0;
  }

  // All outer edges placed: pf are the outer sums every arrangement of them has.
  void leaf(const double* pf) {
    const double ps = dot(c.coeffs, pf, c.F, c.bias);  // the scan's prefix score
    // Exact bound: fl(ps + s) is monotone in s, and s is at most the best inner score
    // among the inner cells each constrained column alone admits.
    double b = inner_best;
    for (const Column& col : cols) {
      const int f = col.f;
      const auto n = static_cast<int64_t>(col.x.size());
      int64_t first = 0, last = n;  // admitted: [first, last)
      if (std::isfinite(hi[f]))
        last = std::partition_point(col.x.begin(), col.x.end(),
                                    [&](double x) { return pf[f] + x <= hi[f]; }) -
               col.x.begin();
      if (std::isfinite(lo[f]))
        first = std::partition_point(col.x.begin(), col.x.end(),
                                     [&](double x) { return !(pf[f] + x >= lo[f]); }) -
                col.x.begin();
      if (first >= last) return;
      if (last < n && worse_score<Largest>(col.pre[last - 1], b)) b = col.pre[last - 1];
      if (first > 0 && worse_score<Largest>(col.suf[first], b)) b = col.suf[first];
    }
    if (full() && worse_score<Largest>(ps + b, thr())) return;
    const bool f_ = full();
    const double t = f_ ? thr() : 0.0;
    hits.clear();
    for (int64_t j = 0; j < c.M; ++j) {
      const double s = ps + c.inner_score[j];
      if (f_ && worse_score<Largest>(s, t)) continue;
      bool ok = true;
      for (int f : c.need) {
        const double x = pf[f] + c.inner[f * c.M + j];
        ok = ok && x >= lo[f] && x <= hi[f];
      }
      if (ok) hits.emplace_back(s, static_cast<int32_t>(j));
    }
    if (hits.empty()) return;
    std::stable_sort(hits.begin(), hits.end(),
                     [](const auto& a, const auto& b) { return Cmp()(a.first, b.first); });
    const int64_t arr = arrangements();
    for (size_t a = 0; a < hits.size();) {
      size_t e = a;
      while (e < hits.size() && hits[e].first == hits[a].first) ++e;
      Group g{counts, {}};
      for (size_t i = a; i < e && static_cast<int64_t>(g.js.size()) < k; ++i)
        g.js.push_back(hits[i].second);
      add(hits[a].first, mul_cap(arr, static_cast<int64_t>(e - a), k), std::move(g));
      a = e;
    }
  }

  // Concrete outer sequences with this multiset of classes, capped at k.
  int64_t arrangements() const {
    int64_t arr = 1;
    int placed = 0;
    for (size_t q = 0; q < members.size(); ++q) {
      placed += counts[q];
      arr = mul_cap(arr, binom[placed][counts[q]], k);
      for (int i = 0; i < counts[q] && arr < k; ++i)
        arr = mul_cap(arr, static_cast<int64_t>(members[q].size()), k);
    }
    return arr;
  }

  void add(double s, int64_t n, Group g) {
    if (full() && worse_score<Largest>(s, thr())) return;
    Level& lv = levels[s];
    const int64_t before = lv.count;
    lv.count = std::min(k, lv.count + n);
    total += lv.count - before;
    lv.groups.push_back(std::move(g));
    // Drop the worst levels while the better ones alone hold k cells.
    while (levels.size() > 1 && total - levels.rbegin()->second.count >= k) {
      total -= levels.rbegin()->second.count;
      levels.erase(std::prev(levels.end()));
    }
  }

  // The lexicographically first arrangement of `rem` (class counts) into seq[from..].
  void fill(std::vector<int32_t>& seq, int from, std::vector<int32_t>& rem) const {
    for (int o = 0; o < c.K; ++o) {
      const int q = cls[o];
      if (members[q][0] != o) continue;
      for (; rem[q] > 0; --rem[q]) seq[from++] = o;
    }
  }

  // The next arrangement in index order, or false after the last.
  bool next(std::vector<int32_t>& seq) const {
    std::vector<int32_t> rem(members.size(), 0);
    for (int i = c.outer - 1; i >= 0; --i) {
      ++rem[cls[seq[i]]];
      for (int o = seq[i] + 1; o < c.K; ++o) {
        if (rem[cls[o]] == 0) continue;
        seq[i] = o;
        --rem[cls[o]];
        fill(seq, i + 1, rem);
        return true;
      }
    }
    return false;
  }

  struct Cursor {
    const Group* g;
    std::vector<int32_t> seq;  // outer op codes
    size_t ji;                 // position in g->js
  };

  // The top-k cells in (score, index) order: per level, a merge of each group's cells
  // in index order (outer arrangement, then inner cell).
  std::vector<std::pair<std::vector<int32_t>, int64_t>> expand() const {
    std::vector<std::pair<std::vector<int32_t>, int64_t>> out;
    auto after = [](const Cursor& a, const Cursor& b) {
      if (a.seq != b.seq) return a.seq > b.seq;
      return a.g->js[a.ji] > b.g->js[b.ji];
    };
    for (const auto& [s, lv] : levels) {
      std::priority_queue<Cursor, std::vector<Cursor>, decltype(after)> heap(after);
      for (const Group& g : lv.groups) {
        Cursor cur{&g, std::vector<int32_t>(c.outer + 1, 0), 0};
        std::vector<int32_t> rem = g.counts;
        fill(cur.seq, 0, rem);
        cur.seq.resize(c.outer);
        heap.push(std::move(cur));
      }
      while (!heap.empty() && static_cast<int64_t>(out.size()) < k) {
        Cursor cur = heap.top();
        heap.pop();
        out.emplace_back(cur.seq, cur.g->js[cur.ji]);
        if (++cur.ji == cur.g->js.size()) {
          cur.ji = 0;
          if (!next(cur.seq)) continue;
        }
        heap.push(std::move(cur));
      }
    }
    return out;
  }
};

}  // namespace nas::enumerate::cpu
