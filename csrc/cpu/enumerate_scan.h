// The scan shared by the CPU kernels of the nas::enumerate_* ops (one file each:
// csrc/cpu/enumerate_<op>.cpp): exhaustive scans of a cell search space that never
// materialise the cells, the running top-k, and the one entry setup.
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
#pragma once
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "enumerate_cells.h"

namespace nas::enumerate::cpu {

constexpr int64_t kTile = 256;  // cells per tile: F + 2 arrays of kTile doubles stay in L1
constexpr int64_t kGrain = int64_t{1} << 16;

// The space, the cost table and the precomputed inner block.
struct Ctx {
  int N = 0, E = 0, K = 0, F = 0, m = 0, outer = 0;
  int64_t M = 1;
  int zero_op = -1;
  bool prune = false;
  // Cell filters (filter_passes in enumerate_cells.h); `filter`: some filter can drop
  // a cell (never without a zero op).
  bool connected_only = false, distinct = false, filter = false;
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
  return dot_rn(coeffs, x, F, start);
}

// The filters a scan applies (nas.enumerate's connected_only / distinct).
struct Filters {
  bool connected_only = false;
  bool distinct = false;
};

inline Ctx make_ctx(const double* T, int64_t K, int64_t F, int64_t N, int64_t zero_op, bool prune,
                    const double* coeffs, int64_t R, double bias, std::vector<int> need,
                    Filters filters = {}) {
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
  c.connected_only = filters.connected_only;
  c.distinct = filters.distinct;
  c.filter = (filters.connected_only || filters.distinct) && zero_op >= 0;
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
  decode_digits(p, c.K, c.outer, oc);
}

// Bit e set when outer edge e is not the zero op.
inline uint64_t outer_nonzero(const Ctx& c, const int32_t* oc) {
  uint64_t nz = 0;
  for (int e = 0; e < c.outer; ++e)
    if (oc[e] != c.zero_op) nz |= uint64_t{1} << e;
  return nz;
}

// Whether each inner zero pattern q (2**m of them) passes the cell filters with one
// outer prefix: filled lazily, so a prefix pays only for the patterns its cells meet
// (a handful when num_ops is large) and the per-cell cost is one lookup.
struct PassTable {
  std::vector<int64_t> gen;   // [2**m] tag of the prefix entry q was computed for
  std::vector<uint8_t> pass;  // [2**m]
  uint64_t onz = 0;
  int64_t tag = -1;

  explicit PassTable(const Ctx& c) {
    if (c.filter) {
      gen.assign(size_t{1} << c.m, -1);
      pass.assign(size_t{1} << c.m, 0);
    }
  }
  // The prefix whose cells follow; tag: any number unique to it within this table.
  void set_prefix(const Ctx& c, const int32_t* oc, int64_t t) {
    onz = outer_nonzero(c, oc);
    tag = t;
  }
  uint8_t get(const Ctx& c, uint32_t q) {
    if (gen[q] != tag) fill(c, q);
    return pass[q];
  }
  // Every pattern at once: for a prefix whose cells will all be visited, so that the
  // per-cell lookup is a branch-free gather (pass[q] of the cell's q).
  const uint8_t* all(const Ctx& c) {
    for (uint32_t q = 0; q < pass.size(); ++q)
      if (gen[q] != tag) fill(c, q);
    return pass.data();
  }

 private:
  void fill(const Ctx& c, uint32_t q) {
    gen[q] = tag;
    pass[q] = cell_passes(onz | (static_cast<uint64_t>(q) << c.outer), c.N, c.E, c.src, c.dst,
                          c.connected_only, c.distinct);
  }
};

// Features of one cell given its outer codes and inner cell j: the same operations,
// in the same order, as the tiled scan (used for the few winners of a search), and
// the code the CUDA kernels run per cell (cell_sums, enumerate_cells.h).
inline void eval_cell(const Ctx& c, const int32_t* oc, int64_t j, double* feat, double* score,
                      bool* canonical) {
  std::vector<double> o(c.F), in(c.F);
  uint64_t alive = ~uint64_t{0};
  if (c.prune) {
    const uint64_t nz = outer_nonzero(c, oc) | (static_cast<uint64_t>(c.inner_nz[j]) << c.outer);
    alive = alive_edge_mask(nz, c.N, c.E, c.src, c.dst);
    if (canonical) *canonical = (nz & ~alive) == 0;
  } else if (canonical) {
    *canonical = true;
  }
  cell_sums(c.T, c.K, c.F, oc, c.outer, j, c.m, alive, o.data(), in.data());
  for (int f = 0; f < c.F; ++f) feat[f] = o[f] + in[f];
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
// [F, kTile] (only the columns in c.need without prune_dead; all with it), canonical
// [kTile] (1 for a cell whose dead edges all carry the zero op: one cell per class of
// cells that prune alike; all 1 without prune_dead) and keep [kTile] (1 for a cell
// passing the filters), null when c.filter is off: every cell passes.
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
  std::vector<uint8_t> q_canon(Q), q_pass(Q);
  std::vector<uint32_t> tq(kTile), ta(kTile);
  std::vector<uint8_t> keep(kTile, 1);
  uint8_t* kp = c.filter ? keep.data() : nullptr;
  PassTable pass(c);
  const size_t Q_all = size_t{1} << c.m;  // inner zero patterns
  int64_t cell = begin;
  while (cell < end) {
    const int64_t p = cell / c.M;
    const int64_t j0 = cell % c.M;
    const int64_t j1 = std::min<int64_t>(c.M, j0 + (end - cell));
    decode_prefix(c, p, oc.data());
    if (!c.prune) {
      if (c.filter) pass.set_prefix(c, oc.data(), p);
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
        if (c.filter) {
          // A prefix visited whole (the usual case) pays its 2**m <= M verdicts once;
          // a partial one only for the patterns its cells meet.
          if (j1 - j0 >= static_cast<int64_t>(Q_all)) {
            const uint8_t* pt = pass.all(c);
            const uint32_t* nz = c.inner_nz.data() + t0;
            for (int64_t j = 0; j < n; ++j) keep[j] = pt[nz[j]];
          } else {
            for (int64_t j = 0; j < n; ++j) keep[j] = pass.get(c, c.inner_nz[t0 + j]);
          }
        }
        v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), kp, n);
      }
    } else {
      const uint64_t onz = outer_nonzero(c, oc.data());
      // Inner zero pattern q of this prefix: which edges stay alive, whether the cell is
      // canonical and passes the filters, and the outer edges' live feature sums and
      // scores.
      auto fill_pattern = [&](int64_t q) {
        const uint64_t nz = onz | (static_cast<uint64_t>(q) << c.outer);
        const uint64_t alive = alive_edge_mask(nz, c.N, c.E, c.src, c.dst);
        q_alive[q] = static_cast<uint32_t>(alive >> c.outer);
        q_canon[q] = (nz & ~alive) == 0;
        q_pass[q] = filter_passes(nz, alive, c.connected_only, c.distinct);
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
            keep[jj] = q_pass[q];
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
          v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), kp, n);
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
          keep[jj] = q_pass[q];
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
        v.tile(p * c.M + t0, score.data(), feat.data(), canon.data(), kp, n);
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

// The feature bounds a visitor checks its tiles against (constraint_tile).
struct Bounds {
  int F = 0;
  const double* lo = nullptr;  // [F]
  const double* hi = nullptr;  // [F]
};

// ---------------------------------------------------------------- running top-k
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
// HasCons: some cells may not qualify (finite bounds, or a filter's keep mask).
template <bool Largest, bool HasCons>
struct TopK : Bounds {
  int64_t k = 1;
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

  void tile(int64_t idx0, const double* score, const double* feat, const uint8_t*,
            const uint8_t* keep, int64_t n) {
    const bool full = static_cast<int64_t>(heap.size()) == k;
    if (full) {
      const double thr = heap.front().s;
      int any = 0;
      for (int64_t j = 0; j < n; ++j) any |= Largest ? (score[j] > thr) : (score[j] < thr);
      if (!any) return;
    }
    if (HasCons) {
      constraint_tile(feat, n, F, lo, hi, ok);
      if (keep)
        for (int64_t j = 0; j < n; ++j) ok[j] &= keep[j];
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

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> topk_outputs(const Ctx& c,
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
inline std::vector<int> constrained(const double* lo, const double* hi, int64_t F) {
  std::vector<int> out;
  for (int f = 0; f < F; ++f)
    if (lo[f] != -std::numeric_limits<double>::infinity() ||
        hi[f] != std::numeric_limits<double>::infinity())
      out.push_back(f);
  return out;
}

// ---------------------------------------------------------------- entry setup
// What every CPU entry builds after its checks (enumerate_<op>_checks.h): contiguous
// inputs, the bounds, the constrained columns and the scan context.
struct Scan {
  at::Tensor T, coeffs, lo, hi;  // contiguous; lo/hi undefined without bounds
  const double* lp = nullptr;    // [F] low bounds, or null
  const double* hp = nullptr;    // [F] high bounds, or null
  bool has_cons = false;         // some bound is finite, or a filter may drop cells
  Ctx c;
};

// rows: score rows in coeffs (1, or 2 for a Pareto front). Without bounds the scan
// materialises every feature column (score_cells); with them, the constrained ones.
inline Scan make_scan(const at::Tensor& op_features, const at::Tensor& coeffs, int64_t rows,
                      double bias, const at::Tensor* low, const at::Tensor* high, int64_t num_nodes,
                      int64_t zero_op, bool prune_dead, Filters filters = {}) {
  Scan s;
  s.T = op_features.contiguous();
  s.coeffs = coeffs.contiguous();
  const int64_t F = op_features.size(1);
  std::vector<int> need;
  if (low) {
    s.lo = low->contiguous();
    s.hi = high->contiguous();
    s.lp = s.lo.const_data_ptr<double>();
    s.hp = s.hi.const_data_ptr<double>();
    need = constrained(s.lp, s.hp, F);
    s.has_cons = !need.empty() || ((filters.connected_only || filters.distinct) && zero_op >= 0);
  } else {
    for (int f = 0; f < F; ++f) need.push_back(f);
  }
  s.c = make_ctx(s.T.const_data_ptr<double>(), s.T.size(0), F, num_nodes, zero_op, prune_dead,
                 s.coeffs.const_data_ptr<double>(), rows, bias, std::move(need), filters);
  return s;
}

}  // namespace nas::enumerate::cpu
