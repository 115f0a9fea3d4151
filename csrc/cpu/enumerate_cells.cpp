// CPU kernels of nas::enumerate_score_cells, enumerate_top_k, enumerate_count,
// enumerate_pareto and enumerate_search_top_k: exhaustive scans of a cell search space
// (and a branch-and-bound search) that never materialise the cells.
//
// Structure: a cell index is (outer prefix p, inner cell j) with the inner block the
// last m edges (enumerate_cells.h). The inner block's feature sums are computed once;
// the cells of one prefix are prefix_sums + inner[j] for contiguous j, so the hot
// loops run over contiguous tiles without branches and auto-vectorise.
//
// Arithmetic (the spec, mirrored by nas/ops/_reference.py and the CUDA kernels): with
// outer_f = sum over the outer edges of T[op, f], left to right from 0.0, and inner_f
// likewise over the inner edges (dead edges add 0.0 under prune_dead),
//   feature f = outer_f + inner_f,
//   score     = ((bias + c0 * outer_0) + c1 * outer_1 + ...) + ((0.0 + c0 * inner_0) + ...),
// every product and sum rounded. The score splits like the features so that the hot
// loop is one add per cell. FMA contraction would change the last bit: off here.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "enumerate_cells.h"

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <utility>
#include <vector>

#include "enumerate_cancel.h"
#include "enumerate_checks.h"

namespace nas::enumerate {
namespace {

constexpr int64_t kTile = 256;  // cells per tile: F + 2 arrays of kTile doubles stay in L1
constexpr int64_t kGrain = int64_t{1} << 16;

// The space, the cost table and the precomputed inner block.
struct Ctx {
  int N = 0, E = 0, K = 0, F = 0, m = 0, outer = 0;
  int64_t M = 1;
  int zero_op = -1;
  bool prune = false;
  const double* T = nullptr;       // [K, F]
  int R = 0;                       // score rows (1, or 2 for a Pareto front)
  const double* coeffs = nullptr;  // [R, F]
  double bias = 0.0;               // added to row 0 and row 1 alike
  std::vector<int> need;           // feature columns the scan materialises
  int src[64] = {0}, dst[64] = {0};
  std::vector<double> inner;        // [F, M] inner feature sums (all edges alive)
  std::vector<double> inner_score;  // [R, M] sum_f coeffs[r, f] * inner[f, j]
  std::vector<int32_t> inner_code;  // [m, M] op code of inner edge t in inner cell j
  std::vector<uint32_t> inner_nz;   // [M] bit t: inner edge t is not the zero op
  // prune_dead: inner sums and scores for every inner alive mask A (2**m of them), when
  // they fit in kMaskedMaxBytes: a cell's inner part is then one lookup.
  std::vector<double> masked;        // [2**m, F, M]
  std::vector<double> masked_score;  // [2**m, R, M]
};

constexpr int64_t kMaskedMaxBytes = int64_t{16} << 20;

// Row r's score of outer (or inner) sums x[F]: the left-to-right dot product.
inline double dot(const double* coeffs, const double* x, int F, double start) {
  double s = start;
  for (int f = 0; f < F; ++f) s = s + coeffs[f] * x[f];
  return s;
}

Ctx make_ctx(const double* T, int64_t K, int64_t F, int64_t N, int64_t zero_op, bool prune,
             const double* coeffs, int64_t R, double bias, std::vector<int> need) {
  Ctx c;
  c.R = static_cast<int>(R);
  c.coeffs = coeffs;
  c.bias = bias;
  c.need = std::move(need);
  c.N = static_cast<int>(N);
  c.K = static_cast<int>(K);
  c.F = static_cast<int>(F);
  c.E = make_edges(c.N, c.src, c.dst);
  c.m = static_cast<int>(inner_edges(K, c.E));
  c.outer = c.E - c.m;
  c.M = 1;
  for (int t = 0; t < c.m; ++t) c.M *= K;
  c.T = T;
  c.zero_op = static_cast<int>(zero_op);
  // Without a zero op every edge is non-zero and every node alive: pruning is a no-op.
  c.prune = prune && zero_op >= 0;
  c.inner.assign(static_cast<size_t>(F * c.M), 0.0);
  c.inner_code.assign(static_cast<size_t>(c.m * c.M), 0);
  c.inner_nz.assign(static_cast<size_t>(c.M), 0);
  for (int64_t j = 0; j < c.M; ++j) {
    int64_t v = j;
    for (int t = c.m - 1; t >= 0; --t) {
      c.inner_code[t * c.M + j] = static_cast<int32_t>(v % K);
      v /= K;
    }
    for (int t = 0; t < c.m; ++t)
      if (c.inner_code[t * c.M + j] != c.zero_op) c.inner_nz[j] |= 1u << t;
    for (int64_t f = 0; f < F; ++f) {
      double s = 0.0;
      for (int t = 0; t < c.m; ++t) s = s + T[c.inner_code[t * c.M + j] * F + f];
      c.inner[f * c.M + j] = s;
    }
  }
  c.inner_score.assign(static_cast<size_t>(R * c.M), 0.0);
  std::vector<double> x(F);
  for (int64_t j = 0; j < c.M; ++j) {
    for (int64_t f = 0; f < F; ++f) x[f] = c.inner[f * c.M + j];
    for (int r = 0; r < c.R; ++r)
      c.inner_score[r * c.M + j] = dot(coeffs + r * F, x.data(), c.F, 0.0);
  }
  const int64_t A = int64_t{1} << c.m;
  if (c.prune && A * c.M * (F + R) * 8 <= kMaskedMaxBytes) {
    c.masked.assign(static_cast<size_t>(A * F * c.M), 0.0);
    c.masked_score.assign(static_cast<size_t>(A * R * c.M), 0.0);
    for (int64_t mask = 0; mask < A; ++mask)
      for (int64_t j = 0; j < c.M; ++j) {
        for (int64_t f = 0; f < F; ++f) {
          double s = 0.0;
          for (int t = 0; t < c.m; ++t)
            s = s + (((mask >> t) & 1) ? T[c.inner_code[t * c.M + j] * F + f] : 0.0);
          x[f] = s;
          c.masked[(mask * F + f) * c.M + j] = s;
        }
        for (int r = 0; r < c.R; ++r)
          c.masked_score[(mask * R + r) * c.M + j] = dot(coeffs + r * F, x.data(), c.F, 0.0);
      }
  }
  return c;
}

// Op codes of the outer edges of prefix p (last outer edge fastest).
inline void decode_prefix(const Ctx& c, int64_t p, int32_t* oc) {
  for (int e = c.outer - 1; e >= 0; --e) {
    oc[e] = static_cast<int32_t>(p % c.K);
    p /= c.K;
  }
}

// Features of one cell given its outer codes and inner cell j: the same operations,
// in the same order, as the tiled scan (used for the few winners of a search).
void eval_cell(const Ctx& c, const int32_t* oc, int64_t j, double* feat, double* score,
               bool* canonical) {
  std::vector<double> o(c.F), in(c.F);
  uint64_t alive = ~uint64_t{0};
  if (c.prune) {
    uint64_t nz = static_cast<uint64_t>(c.inner_nz[j]) << c.outer;
    for (int e = 0; e < c.outer; ++e)
      if (oc[e] != c.zero_op) nz |= uint64_t{1} << e;
    alive = alive_edge_mask(nz, c.N, c.E, c.src, c.dst);
    if (canonical) *canonical = (nz & ~alive) == 0;
  } else if (canonical) {
    *canonical = true;
  }
  for (int f = 0; f < c.F; ++f) {
    double so = 0.0;
    for (int e = 0; e < c.outer; ++e) so = so + (((alive >> e) & 1u) ? c.T[oc[e] * c.F + f] : 0.0);
    double si = 0.0;
    for (int t = 0; t < c.m; ++t)
      si = si + (((alive >> (c.outer + t)) & 1u) ? c.T[c.inner_code[t * c.M + j] * c.F + f] : 0.0);
    o[f] = so;
    in[f] = si;
    feat[f] = so + si;
  }
  for (int r = 0; r < c.R; ++r)
    score[r] = dot(c.coeffs + r * c.F, o.data(), c.F, c.bias) +
               dot(c.coeffs + r * c.F, in.data(), c.F, 0.0);
}

// ok[j] = every feature within its [low, high] bounds.
inline void constraint_tile(const double* feat, int64_t n, int F, const double* lo,
                            const double* hi, uint8_t* ok) {
  for (int64_t j = 0; j < n; ++j) ok[j] = 1;
  for (int f = 0; f < F; ++f) {
    const double l = lo[f], h = hi[f];
    if (l == -std::numeric_limits<double>::infinity() &&
        h == std::numeric_limits<double>::infinity())
      continue;
    const double* x = feat + f * kTile;
    for (int64_t j = 0; j < n; ++j) ok[j] &= static_cast<uint8_t>((x[j] >= l) & (x[j] <= h));
  }
}

// Walks cells [begin, end) tile by tile, handing the visitor score [R, kTile], feat
// [F, kTile] (only the columns in c.need without prune_dead; all with it) and canonical
// [kTile] (1 for a cell whose dead edges all carry the zero op: one cell per class of
// cells that prune alike).
template <class Visitor>
void scan_range(const Ctx& c, int64_t begin, int64_t end, Visitor& v) {
  std::vector<double> feat(static_cast<size_t>(c.F * kTile));
  std::vector<double> score(static_cast<size_t>(c.R * kTile));
  std::vector<uint8_t> canon(kTile, 1);
  std::vector<int32_t> oc(static_cast<size_t>(c.outer) + 1);
  std::vector<double> pf(c.F), ps(c.R), in(c.F);
  // prune_dead: per prefix, what depends on the inner zero pattern q (m bits) alone.
  const int64_t Q = c.prune ? (int64_t{1} << c.m) : 0;
  std::vector<int64_t> q_gen(Q, -1);
  std::vector<double> q_outer(static_cast<size_t>(Q * c.F)), q_score(static_cast<size_t>(Q * c.R));
  std::vector<uint32_t> q_alive(Q);
  std::vector<uint8_t> q_canon(Q);
  std::vector<uint32_t> tq(kTile), ta(kTile);
  int64_t cell = begin;
  while (cell < end) {
    const int64_t p = cell / c.M;
    const int64_t j0 = cell % c.M;
    const int64_t j1 = std::min<int64_t>(c.M, j0 + (end - cell));
    decode_prefix(c, p, oc.data());
    if (!c.prune) {
      for (int f = 0; f < c.F; ++f) {
        double s = 0.0;
        for (int e = 0; e < c.outer; ++e) s = s + c.T[oc[e] * c.F + f];
        pf[f] = s;
      }
      for (int r = 0; r < c.R; ++r) ps[r] = dot(c.coeffs + r * c.F, pf.data(), c.F, c.bias);
      for (int64_t t0 = j0; t0 < j1; t0 += kTile) {
        const int64_t n = std::min<int64_t>(kTile, j1 - t0);
        for (int r = 0; r < c.R; ++r) {
          const double base = ps[r];
          const double* is = c.inner_score.data() + r * c.M + t0;
          double* out = score.data() + r * kTile;
          for (int64_t j = 0; j < n; ++j) out[j] = base + is[j];
        }
        for (int f : c.need) {
          const double base = pf[f];
          const double* ip = c.inner.data() + f * c.M + t0;
          double* out = feat.data() + f * kTile;
          for (int64_t j = 0; j < n; ++j) out[j] = base + ip[j];
        }
        v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), n);
      }
    } else {
      uint64_t onz = 0;
      for (int e = 0; e < c.outer; ++e)
        if (oc[e] != c.zero_op) onz |= uint64_t{1} << e;
      // Inner zero pattern q of this prefix: which edges stay alive, whether the cell is
      // canonical, and the outer edges' live feature sums and scores.
      auto fill_pattern = [&](int64_t q) {
        const uint64_t nz = onz | (static_cast<uint64_t>(q) << c.outer);
        const uint64_t alive = alive_edge_mask(nz, c.N, c.E, c.src, c.dst);
        q_alive[q] = static_cast<uint32_t>(alive >> c.outer);
        q_canon[q] = (nz & ~alive) == 0;
        for (int f = 0; f < c.F; ++f) {
          double s = 0.0;
          for (int e = 0; e < c.outer; ++e)
            s = s + (((alive >> e) & 1u) ? c.T[oc[e] * c.F + f] : 0.0);
          q_outer[q * c.F + f] = s;
        }
        for (int r = 0; r < c.R; ++r)
          q_score[q * c.R + r] = dot(c.coeffs + r * c.F, &q_outer[q * c.F], c.F, c.bias);
      };
      if (!c.masked.empty()) {
        // Every inner zero pattern q of this prefix up front; then each tile is a few
        // branch-free gather loops.
        for (int64_t q = 0; q < Q; ++q) fill_pattern(q);
        for (int64_t t0 = j0; t0 < j1; t0 += kTile) {
          const int64_t n = std::min<int64_t>(kTile, j1 - t0);
          for (int64_t jj = 0; jj < n; ++jj) {
            const uint32_t q = c.inner_nz[t0 + jj];
            tq[jj] = q;
            ta[jj] = q_alive[q];
            canon[jj] = q_canon[q];
          }
          for (int f : c.need) {
            const double* ms = c.masked.data() + f * c.M + t0;
            const double* qo = q_outer.data() + f;
            double* out = feat.data() + f * kTile;
            for (int64_t jj = 0; jj < n; ++jj)
              out[jj] = qo[tq[jj] * c.F] + ms[static_cast<int64_t>(ta[jj]) * c.F * c.M + jj];
          }
          for (int r = 0; r < c.R; ++r) {
            const double* ms = c.masked_score.data() + r * c.M + t0;
            const double* qs = q_score.data() + r;
            double* out = score.data() + r * kTile;
            for (int64_t jj = 0; jj < n; ++jj)
              out[jj] = qs[tq[jj] * c.R] + ms[static_cast<int64_t>(ta[jj]) * c.R * c.M + jj];
          }
          v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), n);
        }
        cell = p * c.M + j1;
        continue;
      }
      for (int64_t t0 = j0; t0 < j1; t0 += kTile) {
        const int64_t n = std::min<int64_t>(kTile, j1 - t0);
        for (int64_t jj = 0; jj < n; ++jj) {
          const int64_t j = t0 + jj;
          const uint32_t q = c.inner_nz[j];
          if (q_gen[q] != p) {
            q_gen[q] = p;
            fill_pattern(q);
          }
          const uint32_t ia = q_alive[q];
          canon[jj] = q_canon[q];
          for (int f = 0; f < c.F; ++f) {
            double s = 0.0;
            for (int t = 0; t < c.m; ++t)
              s = s + (((ia >> t) & 1u) ? c.T[c.inner_code[t * c.M + j] * c.F + f] : 0.0);
            in[f] = s;
            feat[f * kTile + jj] = q_outer[q * c.F + f] + s;
          }
          for (int r = 0; r < c.R; ++r)
            score[r * kTile + jj] =
                q_score[q * c.R + r] + dot(c.coeffs + r * c.F, in.data(), c.F, 0.0);
        }
        v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), n);
      }
    }
    cell = p * c.M + j1;
  }
}

// Runs one visitor per parallel chunk; returns them in chunk order.
template <class Visitor, class Make>
std::vector<Visitor> parallel_scan(const Ctx& c, int64_t start, int64_t count, Make make) {
  std::vector<std::pair<int64_t, Visitor>> parts;
  std::mutex mu;
  at::parallel_for(start, start + count, kGrain, [&](int64_t b, int64_t e) {
    Visitor v = make();
    scan_range(c, b, e, v);
    std::lock_guard<std::mutex> lock(mu);
    parts.emplace_back(b, std::move(v));
  });
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Visitor> out;
  out.reserve(parts.size());
  for (auto& pr : parts) out.push_back(std::move(pr.second));
  return out;
}

// ---------------------------------------------------------------- top-k
struct Entry {
  double s;
  int64_t i;
};

template <bool Largest>
inline bool better(const Entry& a, const Entry& b) {
  if (Largest ? a.s > b.s : a.s < b.s) return true;
  return a.s == b.s && a.i < b.i;
}

// A running top-k over cells visited in increasing index order: the heap's top is the
// worst kept entry. A tile is skipped after one vectorised pass unless some cell in it
// beats the threshold strictly (a tie has a higher index than every kept entry).
template <bool Largest, bool HasCons>
struct TopK {
  int64_t k = 1;
  int F = 0;
  const double* lo = nullptr;
  const double* hi = nullptr;
  std::vector<Entry> heap;
  uint8_t ok[kTile];

  static bool cmp(const Entry& a, const Entry& b) { return better<Largest>(a, b); }

  void push(const Entry& e) {
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), cmp);
    } else if (better<Largest>(e, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), cmp);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), cmp);
    }
  }

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*, int64_t n) {
    const bool full = static_cast<int64_t>(heap.size()) == k;
    if (full) {
      const double thr = heap.front().s;
      int any = 0;
      for (int64_t j = 0; j < n; ++j) any |= Largest ? (score[j] > thr) : (score[j] < thr);
      if (!any) return;
    }
    if (HasCons) {
      constraint_tile(feat, n, F, lo, hi, ok);
      if (full) {  // a second vectorised pass: beats the threshold and qualifies
        const double thr = heap.front().s;
        int any = 0;
        for (int64_t j = 0; j < n; ++j)
          any |= (Largest ? (score[j] > thr) : (score[j] < thr)) & ok[j];
        if (!any) return;
      }
    }
    for (int64_t j = 0; j < n; ++j)
      if (!HasCons || ok[j]) push({score[j], idx0 + j});
  }
};

template <bool Largest>
std::vector<Entry> merge_topk(std::vector<Entry> all, int64_t k) {
  std::sort(all.begin(), all.end(),
            [](const Entry& a, const Entry& b) { return better<Largest>(a, b); });
  if (static_cast<int64_t>(all.size()) > k) all.resize(k);
  return all;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> topk_outputs(const Ctx& c,
                                                            const std::vector<Entry>& best,
                                                            const at::TensorOptions& opts) {
  const int64_t n = static_cast<int64_t>(best.size());
  at::Tensor idx = at::empty({n}, opts.dtype(at::kLong));
  at::Tensor sc = at::empty({n}, opts.dtype(at::kDouble));
  at::Tensor ft = at::empty({n, c.F}, opts.dtype(at::kDouble));
  std::vector<int32_t> oc(static_cast<size_t>(c.outer) + 1);
  for (int64_t r = 0; r < n; ++r) {
    decode_prefix(c, best[r].i / c.M, oc.data());
    eval_cell(c, oc.data(), best[r].i % c.M, ft.mutable_data_ptr<double>() + r * c.F,
              sc.mutable_data_ptr<double>() + r, nullptr);
    idx.mutable_data_ptr<int64_t>()[r] = best[r].i;
  }
  return {idx, sc, ft};
}

// Feature columns with a finite bound.
std::vector<int> constrained(const double* lo, const double* hi, int64_t F) {
  std::vector<int> out;
  for (int f = 0; f < F; ++f)
    if (lo[f] != -std::numeric_limits<double>::infinity() ||
        hi[f] != std::numeric_limits<double>::infinity())
      out.push_back(f);
  return out;
}

template <bool Largest, bool HasCons>
std::vector<Entry> run_topk(const Ctx& c, int64_t start, int64_t count, int64_t k, const double* lo,
                            const double* hi) {
  using V = TopK<Largest, HasCons>;
  auto parts = parallel_scan<V>(c, start, count, [&] {
    V v;
    v.k = k;
    v.F = c.F;
    v.lo = lo;
    v.hi = hi;
    return v;
  });
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
  int g = -1;               // sort column; -1: the score (best first)
  int64_t M = 0, runs = 0;  // ranks, spans of kRun ranks
  std::vector<int32_t> j;   // [M] inner cell at rank r
  std::vector<double> key;  // [M] inner[g, j[r]]
  std::vector<double> sc;   // [M] inner_score[j[r]]
  std::vector<int> others;  // constrained columns other than g
  std::vector<double> of;   // [others, M] inner[f, j[r]]
  std::vector<double> st;   // [levels, runs] sparse table: best score of 2**l spans

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
    for (int64_t r = 0; r < M; ++r) {
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
  const int64_t M = c.M;
  const int g = s.g;
  const bool by_score = g < 0;
  for (int64_t p = p0; p < p1; ++p) {
    decode_prefix(c, p, oc.data());
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
  auto edge = [&](int64_t b, int64_t e) {
    if (b >= e) return;
    if (c.need.empty()) {
      TopK<Largest, false> v;
      v.k = k;
      scan_range(c, b, e, v);
      all.insert(all.end(), v.heap.begin(), v.heap.end());
    } else {
      TopK<Largest, true> v;
      v.k = k;
      v.F = c.F;
      v.lo = lo;
      v.hi = hi;
      scan_range(c, b, e, v);
      all.insert(all.end(), v.heap.begin(), v.heap.end());
    }
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
    TopK<Largest, false> v;
    v.k = k;
    scan_sorted<Largest>(c, s, b, e, lo, hi, v);
    std::lock_guard<std::mutex> lock(mu);
    all.insert(all.end(), v.heap.begin(), v.heap.end());
  });
  return merge_topk<Largest>(std::move(all), k);
}

// The common entry checks; returns the contiguous inputs.
struct Inputs {
  at::Tensor T, coeffs, lo, hi;
};

Inputs prepare(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
               const at::Tensor* low, const at::Tensor* high, int64_t num_nodes, int64_t zero_op,
               int64_t start, int64_t count) {
  check_scan_args(op_features, coeffs, bias, num_nodes, zero_op, start, count);
  check_finite(op_features, "op_features");
  check_finite(coeffs, "coeffs");
  Inputs in{op_features.contiguous(), coeffs.contiguous(), {}, {}};
  if (low) {
    check_bounds(*low, *high, op_features.size(1));
    in.lo = low->contiguous();
    in.hi = high->contiguous();
  }
  return in;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_top_k_cpu(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& coeffs,       // [F] float64
    double bias,
    const at::Tensor& low,   // [F] float64, -inf for none
    const at::Tensor& high,  // [F] float64, +inf for none
    int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start, int64_t count, int64_t k,
    bool largest) {
  TORCH_CHECK_VALUE(coeffs.dim() == 1, "coeffs must be 1-D [F], got ", coeffs.sizes());
  TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
  const Inputs in =
      prepare(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, start, count);
  const double* lp = in.lo.const_data_ptr<double>();
  const double* hp = in.hi.const_data_ptr<double>();
  const int64_t F = op_features.size(1);
  std::vector<int> cons = constrained(lp, hp, F);
  const bool has = !cons.empty();
  const Ctx c = make_ctx(in.T.const_data_ptr<double>(), in.T.size(0), F, num_nodes, zero_op,
                         prune_dead, in.coeffs.const_data_ptr<double>(), 1, bias, std::move(cons));
  std::vector<Entry> best;
  if (!c.prune)
    best = largest ? run_topk_sorted<true>(c, start, count, k, lp, hp)
                   : run_topk_sorted<false>(c, start, count, k, lp, hp);
  else if (largest)
    best = has ? run_topk<true, true>(c, start, count, k, lp, hp)
               : run_topk<true, false>(c, start, count, k, lp, hp);
  else
    best = has ? run_topk<false, true>(c, start, count, k, lp, hp)
               : run_topk<false, false>(c, start, count, k, lp, hp);
  return topk_outputs(c, best, op_features.options());
}

// ---------------------------------------------------------------- score_cells
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
  TORCH_CHECK_VALUE(coeffs.dim() == 1, "coeffs must be 1-D [F], got ", coeffs.sizes());
  const Inputs in =
      prepare(op_features, coeffs, bias, nullptr, nullptr, num_nodes, zero_op, start, count);
  const int64_t F = op_features.size(1);
  std::vector<int> all(F);
  for (int f = 0; f < F; ++f) all[f] = f;
  const Ctx c = make_ctx(in.T.const_data_ptr<double>(), in.T.size(0), F, num_nodes, zero_op,
                         prune_dead, in.coeffs.const_data_ptr<double>(), 1, bias, std::move(all));
  at::Tensor feats = at::empty({count, F}, op_features.options());
  at::Tensor scores = at::empty({count}, op_features.options());
  Writer proto{c.F, start, feats.mutable_data_ptr<double>(), scores.mutable_data_ptr<double>()};
  if (count > 0) parallel_scan<Writer>(c, start, count, [&] { return proto; });
  return {feats, scores};
}

// ---------------------------------------------------------------- count / histogram
// Bin of score s: 0 below hmin, bins + 1 at or above hmax, else
// 1 + min(bins - 1, floor((s - hmin) / (hmax - hmin) * bins)).
inline int64_t hist_bin(double s, int64_t bins, double hmin, double hmax) {
  if (s < hmin) return 0;
  if (!(s < hmax)) return bins + 1;
  const double t = (s - hmin) / (hmax - hmin) * static_cast<double>(bins);
  return 1 + std::min<int64_t>(bins - 1, static_cast<int64_t>(t));
}

template <bool HasCons, bool Hist>
struct Counter {
  int F = 0;
  const double* lo = nullptr;
  const double* hi = nullptr;
  int64_t bins = 0;
  double hmin = 0.0, hmax = 1.0;
  int64_t count = 0, distinct = 0;
  std::vector<int64_t> hist;  // [bins + 2]: below hmin, the bins, at or above hmax
  uint8_t ok[kTile];

  void tile(int64_t, const double* score, const double* feat, const uint8_t* canon, int64_t n) {
    if (HasCons) {
      constraint_tile(feat, n, F, lo, hi, ok);
    } else {
      for (int64_t j = 0; j < n; ++j) ok[j] = 1;
    }
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
    V v;
    v.F = c.F;
    v.lo = lo;
    v.hi = hi;
    v.bins = bins;
    v.hmin = hmin;
    v.hmax = hmax;
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

std::tuple<at::Tensor, at::Tensor> enumerate_count_cpu(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& coeffs,       // [F] float64
    double bias, const at::Tensor& low, const at::Tensor& high, int64_t num_nodes, int64_t zero_op,
    bool prune_dead, int64_t start, int64_t count, int64_t bins, double hist_min, double hist_max) {
  TORCH_CHECK_VALUE(coeffs.dim() == 1, "coeffs must be 1-D [F], got ", coeffs.sizes());
  TORCH_CHECK_VALUE(bins >= 0, "bins must be >= 0, got ", bins);
  if (bins > 0)
    TORCH_CHECK_VALUE(std::isfinite(hist_min) && std::isfinite(hist_max) && hist_min < hist_max,
                      "histogram range must be finite with hist_min < hist_max, got [", hist_min,
                      ", ", hist_max, "]");
  const Inputs in =
      prepare(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, start, count);
  const double* lp = in.lo.const_data_ptr<double>();
  const double* hp = in.hi.const_data_ptr<double>();
  const int64_t F = op_features.size(1);
  std::vector<int> cons = constrained(lp, hp, F);
  const bool has = !cons.empty();
  const Ctx c = make_ctx(in.T.const_data_ptr<double>(), in.T.size(0), F, num_nodes, zero_op,
                         prune_dead, in.coeffs.const_data_ptr<double>(), 1, bias, std::move(cons));
  std::tuple<std::vector<int64_t>, int64_t, int64_t> r;
  if (bins > 0)
    r = has ? run_count<true, true>(c, start, count, lp, hp, bins, hist_min, hist_max)
            : run_count<false, true>(c, start, count, lp, hp, bins, hist_min, hist_max);
  else
    r = has ? run_count<true, false>(c, start, count, lp, hp, 0, 0.0, 1.0)
            : run_count<false, false>(c, start, count, lp, hp, 0, 0.0, 1.0);
  const auto& hv = std::get<0>(r);
  at::Tensor hist = at::empty({bins + 2}, op_features.options().dtype(at::kLong));
  std::copy(hv.begin(), hv.end(), hist.mutable_data_ptr<int64_t>());
  at::Tensor totals = at::empty({2}, op_features.options().dtype(at::kLong));
  totals.mutable_data_ptr<int64_t>()[0] = std::get<1>(r);
  totals.mutable_data_ptr<int64_t>()[1] = std::get<2>(r);
  return {hist, totals};
}

// ---------------------------------------------------------------- pareto front
struct PEntry {
  double a, b;  // objectives, both minimised
  int64_t i;    // lowest index with these objectives
  int64_t n;    // cells with these objectives
};

// The exact non-dominated set of distinct objective pairs, kept sorted by a
// ascending (b then strictly descending). Cells are visited in increasing index order.
template <bool HasCons>
struct Pareto {
  int F = 0;
  const double* lo = nullptr;
  const double* hi = nullptr;
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

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*, int64_t n) {
    if (HasCons) constraint_tile(feat, n, F, lo, hi, ok);
    for (int64_t j = 0; j < n; ++j)
      if (!HasCons || ok[j]) insert(score[j], score[kTile + j], idx0 + j);
  }
};

template <bool HasCons>
std::vector<PEntry> run_pareto(const Ctx& c, int64_t start, int64_t count, const double* lo,
                               const double* hi) {
  using V = Pareto<HasCons>;
  auto parts = parallel_scan<V>(c, start, count, [&] {
    V v;
    v.F = c.F;
    v.lo = lo;
    v.hi = hi;
    return v;
  });
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

std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_pareto_cpu(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& objectives,   // [2, F] float64: objective r = sum_f objectives[r, f] * f
    const at::Tensor& low, const at::Tensor& high, int64_t num_nodes, int64_t zero_op,
    bool prune_dead, int64_t start, int64_t count) {
  TORCH_CHECK_VALUE(objectives.dim() == 2 && objectives.size(0) == 2,
                    "objectives must be [2, F] (two rows of coefficients), got ",
                    objectives.sizes());
  const Inputs in =
      prepare(op_features, objectives, 0.0, &low, &high, num_nodes, zero_op, start, count);
  const double* lp = in.lo.const_data_ptr<double>();
  const double* hp = in.hi.const_data_ptr<double>();
  const int64_t F = op_features.size(1);
  std::vector<int> cons = constrained(lp, hp, F);
  const bool has = !cons.empty();
  const Ctx c = make_ctx(in.T.const_data_ptr<double>(), in.T.size(0), F, num_nodes, zero_op,
                         prune_dead, in.coeffs.const_data_ptr<double>(), 2, 0.0, std::move(cons));
  const std::vector<PEntry> front =
      has ? run_pareto<true>(c, start, count, lp, hp) : run_pareto<false>(c, start, count, lp, hp);
  const int64_t n = static_cast<int64_t>(front.size());
  at::Tensor idx = at::empty({n}, op_features.options().dtype(at::kLong));
  at::Tensor val = at::empty({n, 2}, op_features.options());
  at::Tensor mult = at::empty({n}, op_features.options().dtype(at::kLong));
  for (int64_t r = 0; r < n; ++r) {
    idx.mutable_data_ptr<int64_t>()[r] = front[r].i;
    val.mutable_data_ptr<double>()[2 * r] = front[r].a;
    val.mutable_data_ptr<double>()[2 * r + 1] = front[r].b;
    mult.mutable_data_ptr<int64_t>()[r] = front[r].n;
  }
  return {idx, val, mult};
}

// ---------------------------------------------------------------- branch and bound
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
  std::vector<uint8_t> canon;
  mutable std::vector<uint8_t> fits;  // [K] scratch of promising(): op o fits a free edge

  Search(const Ctx& ctx, const double* l, const double* h, int64_t k, int64_t maxn)
      : c(ctx), lo(l), hi(h), max_nodes(maxn) {
    topk.k = k;
    topk.F = c.F;
    topk.lo = l;
    topk.hi = h;
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
      for (int64_t t0 = 0; t0 < c.M; t0 += kTile) {
        const int64_t n = std::min<int64_t>(kTile, c.M - t0);
        for (int64_t j = 0; j < n; ++j) score[j] = ps + c.inner_score[t0 + j];
        for (int f : c.need)
          for (int64_t j = 0; j < n; ++j) feat[f * kTile + j] = pf[f] + c.inner[f * c.M + t0 + j];
        topk.tile(leaf * c.M + t0, score.data(), feat.data(), canon.data(), n);
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

std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_search_top_k_cpu(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& coeffs,       // [F] float64
    double bias, const at::Tensor& low, const at::Tensor& high, int64_t num_nodes, int64_t k,
    bool largest, int64_t max_nodes) {
  TORCH_CHECK_VALUE(coeffs.dim() == 1, "coeffs must be 1-D [F], got ", coeffs.sizes());
  TORCH_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
  TORCH_CHECK_VALUE(max_nodes >= 1, "max_nodes must be >= 1, got ", max_nodes);
  const Inputs in = prepare(op_features, coeffs, bias, &low, &high, num_nodes, -1, 0, 0);
  const double* lp = in.lo.const_data_ptr<double>();
  const double* hp = in.hi.const_data_ptr<double>();
  const int64_t F = op_features.size(1);
  const Ctx c = make_ctx(in.T.const_data_ptr<double>(), in.T.size(0), F, num_nodes, -1, false,
                         in.coeffs.const_data_ptr<double>(), 1, bias, constrained(lp, hp, F));
  return largest ? run_search<true>(c, lp, hp, k, max_nodes, op_features.options())
                 : run_search<false>(c, lp, hp, k, max_nodes, op_features.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) {
  m.impl("enumerate_score_cells", &enumerate_score_cells_cpu);
  m.impl("enumerate_top_k", &enumerate_top_k_cpu);
  m.impl("enumerate_count", &enumerate_count_cpu);
  m.impl("enumerate_pareto", &enumerate_pareto_cpu);
  m.impl("enumerate_search_top_k", &enumerate_search_top_k_cpu);
}

}  // namespace nas::enumerate
