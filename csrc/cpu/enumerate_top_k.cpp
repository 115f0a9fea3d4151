// CPU kernel of nas::enumerate_top_k: the k best cells of a range under feature bounds.
#include <numeric>

#include "cpu/enumerate_scan.h"
#include "enumerate_top_k_checks.h"

namespace nas::enumerate::cpu {
namespace {

template <bool Largest, bool HasCons>
std::vector<Entry> run_topk(const Ctx& c, int64_t start, int64_t count, int64_t k, const double* lo,
                            const double* hi) {
  using V = TopK<Largest, HasCons>;
  auto parts = parallel_scan<V>(c, start, count, [&] { return V{{c.F, lo, hi}, k}; });
  std::vector<Entry> all;
  for (auto& v : parts) all.insert(all.end(), v.heap.begin(), v.heap.end());
  return merge_topk<Largest>(std::move(all), k);
}

// ---------------------------------------------------------------- top-k, sorted inner block
// Without prune_dead a cell's score is ps(p) + inner_score[j] and its feature f is
// pf_f(p) + inner[f, j], each a single rounded addition. Rounding is monotone, so one
// order of the inner block orders every prefix's cells alike. The block is sorted by
// the first constrained column g (by the score, best first, when nothing is
// constrained): a prefix's cells within g's bounds are then one contiguous run of
// ranks, found by binary search with the scan's own predicate, and spans of kRun
// ranks whose best score cannot reach the running k-th best are skipped whole (a
// sparse table gives the best score of any span, so most prefixes cost a few
// operations). Exact: a cell is skipped only when its score is strictly worse than
// the k-th best kept; ties (possibly of lower index) are visited.
constexpr int64_t kRun = 32;

template <bool Largest>
inline double pick_best(double a, double b) {
  return Largest ? std::max(a, b) : std::min(a, b);
}

template <bool Largest>
inline bool worse(double s, double thr) {
  return Largest ? s < thr : s > thr;
}

template <bool Largest>
struct SortedInner {
  int g = -1;                // sort column; -1: the score (best first)
  int64_t M = 0, runs = 0;   // ranks, spans of kRun ranks
  std::vector<int32_t> j;    // [M] inner cell at rank r
  std::vector<double> key;   // [M] inner[g, j[r]]
  std::vector<double> sc;    // [M] inner_score[j[r]]
  std::vector<int> others;   // constrained columns other than g
  std::vector<double> of;    // [others, M] inner[f, j[r]]
  std::vector<double> st;    // [levels, runs] sparse table: best score of 2**l spans
  std::vector<uint32_t> nz;  // [M] inner zero pattern of j[r] (the cell filters read it)

  explicit SortedInner(const Ctx& c) : M(c.M) {
    g = c.need.empty() ? -1 : c.need[0];
    others.assign(c.need.begin() + (c.need.empty() ? 0 : 1), c.need.end());
    j.resize(M);
    std::iota(j.begin(), j.end(), 0);
    const double* k = g >= 0 ? c.inner.data() + g * M : c.inner_score.data();
    std::stable_sort(j.begin(), j.end(), [&](int32_t a, int32_t b) {
      return g < 0 && Largest ? k[a] > k[b] : k[a] < k[b];
    });
    key.resize(M);
    sc.resize(M);
    of.resize(others.size() * M);
    nz.resize(M);
    for (int64_t r = 0; r < M; ++r) {
      nz[r] = c.inner_nz[j[r]];
      key[r] = k[j[r]];
      sc[r] = c.inner_score[j[r]];
      for (size_t o = 0; o < others.size(); ++o) of[o * M + r] = c.inner[others[o] * M + j[r]];
    }
    runs = (M + kRun - 1) / kRun;
    st.resize(runs);
    for (int64_t b = 0; b < runs; ++b) {
      double v = sc[b * kRun];
      for (int64_t r = b * kRun; r < std::min(M, (b + 1) * kRun); ++r)
        v = pick_best<Largest>(v, sc[r]);
      st[b] = v;
    }
    for (int64_t w = 1; 2 * w <= runs; w *= 2) {
      const size_t base = st.size() - runs;
      st.resize(base + 2 * runs);
      for (int64_t b = 0; b + 2 * w <= runs; ++b)
        st[base + runs + b] = pick_best<Largest>(st[base + b], st[base + b + w]);
    }
  }

  // Best inner score over the spans b0..b1 (inclusive).
  double span_best(int64_t b0, int64_t b1) const {
    int l = 0;
    while ((int64_t{2} << l) <= b1 - b0 + 1) ++l;
    const double* row = st.data() + l * runs;
    return pick_best<Largest>(row[b0], row[b1 - (int64_t{1} << l) + 1]);
  }
};

// Full prefixes [p0, p1) into topk (whose F/lo/hi are unused here).
template <bool Largest>
void scan_sorted(const Ctx& c, const SortedInner<Largest>& s, int64_t p0, int64_t p1,
                 const double* lo, const double* hi, TopK<Largest, false>& topk) {
  std::vector<int32_t> oc(static_cast<size_t>(c.outer) + 1);
  std::vector<double> pf(c.F);
  double sc[kRun];
  uint8_t ok[kRun];
  PassTable pass(c);
  const int64_t M = c.M;
  const int g = s.g;
  const bool by_score = g < 0;
  for (int64_t p = p0; p < p1; ++p) {
    decode_prefix(c, p, oc.data());
    if (c.filter) pass.set_prefix(c, oc.data(), p);
    for (int f = 0; f < c.F; ++f) {
      double v = 0.0;
      for (int e = 0; e < c.outer; ++e) v = v + c.T[oc[e] * c.F + f];
      pf[f] = v;
    }
    const double ps = dot(c.coeffs, pf.data(), c.F, c.bias);
    int64_t r0 = 0, r1 = M;
    if (g >= 0) {
      const double base = pf[g], l = lo[g], h = hi[g];
      r0 = std::partition_point(s.key.begin(), s.key.end(),
                                [&](double x) { return !(base + x >= l); }) -
           s.key.begin();
      r1 = std::partition_point(s.key.begin() + r0, s.key.end(),
                                [&](double x) { return base + x <= h; }) -
           s.key.begin();
      if (r0 >= r1) continue;
    }
    const int64_t b0 = r0 / kRun, b1 = (r1 - 1) / kRun;
    if (static_cast<int64_t>(topk.heap.size()) == topk.k &&
        worse<Largest>(ps + s.span_best(b0, b1), topk.heap.front().s))
      continue;
    for (int64_t b = b0; b <= b1; ++b) {
      const bool full = static_cast<int64_t>(topk.heap.size()) == topk.k;
      const double thr = full ? topk.heap.front().s : 0.0;
      if (full && worse<Largest>(ps + s.st[b], thr)) {
        if (by_score) break;  // ranks are best first: no later span does better
        continue;
      }
      const int64_t ra = std::max(r0, b * kRun), n = std::min(r1, (b + 1) * kRun) - ra;
      for (int64_t r = 0; r < n; ++r) sc[r] = ps + s.sc[ra + r];
      for (int64_t r = 0; r < n; ++r) ok[r] = 1;
      for (size_t o = 0; o < s.others.size(); ++o) {
        const int f = s.others[o];
        const double base = pf[f], l = lo[f], h = hi[f];
        const double* x = s.of.data() + o * M + ra;
        for (int64_t r = 0; r < n; ++r)
          ok[r] &= static_cast<uint8_t>((base + x[r] >= l) & (base + x[r] <= h));
      }
      if (c.filter)  // after the bounds: only this span's cells pay for the filter
        for (int64_t r = 0; r < n; ++r) ok[r] &= pass.get(c, s.nz[ra + r]);
      if (full) {
        int any = 0;
        for (int64_t r = 0; r < n; ++r) any |= !worse<Largest>(sc[r], thr) & ok[r];
        if (!any) continue;
      }
      for (int64_t r = 0; r < n; ++r)
        if (ok[r]) topk.push({sc[r], p * M + s.j[ra + r]});
    }
  }
}

// Exhaustive top-k without prune_dead: partial prefixes at either end of the range
// go through the tiled scan, the full prefixes between them through scan_sorted.
template <bool Largest>
std::vector<Entry> run_topk_sorted(const Ctx& c, int64_t start, int64_t count, int64_t k,
                                   const double* lo, const double* hi) {
  const int64_t end = start + count;
  const int64_t pa = (start + c.M - 1) / c.M, pb = end / c.M;
  std::vector<Entry> all;
  auto edge = [&](int64_t b, int64_t e) {  // fewer than M cells: one tiled chunk
    if (b >= e) return;
    const std::vector<Entry> part = c.need.empty() && !c.filter
                                        ? run_topk<Largest, false>(c, b, e - b, k, lo, hi)
                                        : run_topk<Largest, true>(c, b, e - b, k, lo, hi);
    all.insert(all.end(), part.begin(), part.end());
  };
  if (pa >= pb) {
    edge(start, end);
    return merge_topk<Largest>(std::move(all), k);
  }
  edge(start, pa * c.M);
  edge(pb * c.M, end);
  const SortedInner<Largest> s(c);
  std::mutex mu;
  at::parallel_for(pa, pb, std::max<int64_t>(1, kGrain / c.M), [&](int64_t b, int64_t e) {
    TopK<Largest, false> v{{c.F, lo, hi}, k};
    scan_sorted<Largest>(c, s, b, e, lo, hi, v);
    std::lock_guard<std::mutex> lock(mu);
    all.insert(all.end(), v.heap.begin(), v.heap.end());
  });
  return merge_topk<Largest>(std::move(all), k);
}

TopKOut enumerate_top_k_cpu(const TopKArgs& a) {
  const Scan s = make_scan(a.op_features, a.coeffs, 1, a.bias, &a.low, &a.high, a.num_nodes,
                           a.zero_op, a.prune_dead, {a.connected_only, a.distinct});
  const Ctx& c = s.c;
  const int64_t start = a.start, count = a.count, k = a.k;
  const bool largest = a.largest;
  std::vector<Entry> best;
  if (!c.prune)
    best = largest ? run_topk_sorted<true>(c, start, count, k, s.lp, s.hp)
                   : run_topk_sorted<false>(c, start, count, k, s.lp, s.hp);
  else if (largest)
    best = s.has_cons ? run_topk<true, true>(c, start, count, k, s.lp, s.hp)
                      : run_topk<true, false>(c, start, count, k, s.lp, s.hp);
  else
    best = s.has_cons ? run_topk<false, true>(c, start, count, k, s.lp, s.hp)
                      : run_topk<false, false>(c, start, count, k, s.lp, s.hp);
  return topk_outputs(c, best, a.op_features.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) { m.impl("enumerate_top_k", &top_k_entry<enumerate_top_k_cpu>); }

}  // namespace nas::enumerate::cpu
