// CUDA kernels of nas::enumerate_score_cells, enumerate_top_k and enumerate_count.
// Same structure and arithmetic as csrc/cpu/enumerate_scan.h: a block walks outer
// prefixes (grid-stride), its threads stride over the prefix's inner cells, whose
// feature sums and scores were precomputed once (enumerate_prepare_launch). Every
// product and sum is rounded separately (__dmul_rn / __dadd_rn): nvcc would otherwise
// contract a * b + c into an FMA and change the last bit.
#include "cuda/enumerate_cells.cuh"
#include "enumerate_cells.h"

namespace nas::cuda {
namespace {

using nas::enumerate::alive_edge_mask;
using nas::enumerate::inner_edges;
using nas::enumerate::kMaxNodes;
using nas::enumerate::make_edges;

constexpr int kThreads = 256;
constexpr int kMaxEdges = kMaxNodes * (kMaxNodes - 1) / 2;

struct Geo {
  int E, m, outer;
  int64_t M;
};

Geo make_geo(const EnumerateArgs& a) {
  Geo g;
  g.E = a.num_nodes * (a.num_nodes - 1) / 2;
  g.m = static_cast<int>(inner_edges(a.K, g.E));
  g.outer = g.E - g.m;
  g.M = 1;
  for (int t = 0; t < g.m; ++t) g.M *= a.K;
  return g;
}

__device__ inline double dot(const double* c, const double* x, int F, double start) {
  double s = start;
  for (int f = 0; f < F; ++f) s = __dadd_rn(s, __dmul_rn(c[f], x[f]));
  return s;
}

// One cell from scratch (any mode): features [F], score, canonical.
__device__ void eval_cell(const EnumerateArgs& a, const Geo& g, int64_t idx, double* feat,
                          double* score, bool* canonical) {
  int code[kMaxEdges];
  uint64_t v = static_cast<uint64_t>(idx);
  for (int e = g.E - 1; e >= 0; --e) {
    code[e] = static_cast<int>(v % static_cast<uint64_t>(a.K));
    v /= static_cast<uint64_t>(a.K);
  }
  uint64_t alive = ~uint64_t{0};
  bool canon = true;
  if (a.prune) {
    int src[kMaxEdges], dst[kMaxEdges];
    make_edges(a.num_nodes, src, dst);
    uint64_t nz = 0;
    for (int e = 0; e < g.E; ++e)
      if (code[e] != a.zero_op) nz |= uint64_t{1} << e;
    alive = alive_edge_mask(nz, a.num_nodes, g.E, src, dst);
    canon = (nz & ~alive) == 0;
  }
  double o[kMaxFeatures], in[kMaxFeatures];
  for (int f = 0; f < a.F; ++f) {
    double so = 0.0, si = 0.0;
    for (int e = 0; e < g.E; ++e) {
      const double x = ((alive >> e) & 1u) ? a.T[code[e] * a.F + f] : 0.0;
      if (e < g.outer)
        so = __dadd_rn(so, x);
      else
        si = __dadd_rn(si, x);
    }
    o[f] = so;
    in[f] = si;
    feat[f] = __dadd_rn(so, si);
  }
  *score = __dadd_rn(dot(a.coeffs, o, a.F, a.bias), dot(a.coeffs, in, a.F, 0.0));
  *canonical = canon;
}

__device__ inline bool within(const EnumerateArgs& a, const double* feat) {
  bool ok = true;
  for (int f = 0; f < a.F; ++f) {
    const double lo = a.low[f], hi = a.high[f];
    if (isinf(lo) && isinf(hi) && lo < 0.0 && hi > 0.0) continue;  // unconstrained
    ok = ok && feat[f] >= lo && feat[f] <= hi;
  }
  return ok;
}

__global__ void prepare_kernel(EnumerateArgs a, Geo g) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= g.M) return;
  double x[kMaxFeatures];
  for (int f = 0; f < a.F; ++f) {
    double s = 0.0;
    int64_t v = j, div = g.M;
    for (int t = 0; t < g.m; ++t) {  // inner edge t's digit, most significant first
      div /= a.K;
      const int d = static_cast<int>((v / div) % a.K);
      s = __dadd_rn(s, a.T[d * a.F + f]);
    }
    x[f] = s;
    a.inner[f * g.M + j] = s;
  }
  a.inner_score[j] = dot(a.coeffs, x, a.F, 0.0);
}

__global__ void score_kernel(EnumerateArgs a, Geo g, int64_t start, int64_t count,
                             const int64_t* __restrict__ indices, double* __restrict__ feat_out,
                             double* __restrict__ score_out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    double feat[kMaxFeatures], s;
    bool canon;
    eval_cell(a, g, indices ? indices[i] : start + i, feat, &s, &canon);
    for (int f = 0; f < a.F; ++f) feat_out[i * a.F + f] = feat[f];
    score_out[i] = s;
  }
}

// Prefix sums of outer prefix p into shared memory (thread 0).
__device__ void prefix_sums(const EnumerateArgs& a, const Geo& g, int64_t p, double* pf,
                            double* ps) {
  int code[kMaxEdges];
  for (int e = g.outer - 1; e >= 0; --e) {
    code[e] = static_cast<int>(p % a.K);
    p /= a.K;
  }
  for (int f = 0; f < a.F; ++f) {
    double s = 0.0;
    for (int e = 0; e < g.outer; ++e) s = __dadd_rn(s, a.T[code[e] * a.F + f]);
    pf[f] = s;
  }
  *ps = dot(a.coeffs, pf, a.F, a.bias);
}

template <bool Largest>
__device__ inline bool better(double s1, int64_t i1, double s2, int64_t i2) {
  if (Largest ? s1 > s2 : s1 < s2) return true;
  return s1 == s2 && i1 < i2;
}

// Walks the cells [start, end): calls visit(index, score, feat-or-null, ok, canonical)
// for each. Without prune_dead, feat is filled only when there are constraints.
template <bool Prune, class Visit>
__device__ void walk(const EnumerateArgs& a, const Geo& g, int64_t start, int64_t end,
                     Visit& visit) {
  __shared__ double pf_s[kMaxFeatures];
  __shared__ double ps_s;
  const int64_t p_first = start / g.M, p_last = (end - 1) / g.M;
  for (int64_t p = p_first + blockIdx.x; p <= p_last; p += gridDim.x) {
    const int64_t j0 = p == p_first ? start % g.M : 0;
    const int64_t j1 = p == p_last ? (end - 1) % g.M + 1 : g.M;
    if (!Prune) {
      if (threadIdx.x == 0) prefix_sums(a, g, p, pf_s, &ps_s);
      __syncthreads();
    }
    for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
      double feat[kMaxFeatures], s;
      bool canon = true, ok = true;
      if (Prune) {
        eval_cell(a, g, p * g.M + j, feat, &s, &canon);
        if (a.has_cons) ok = within(a, feat);
      } else {
        s = __dadd_rn(ps_s, a.inner_score[j]);
        if (a.has_cons) {
          for (int f = 0; f < a.F; ++f) feat[f] = __dadd_rn(pf_s[f], a.inner[f * g.M + j]);
          ok = within(a, feat);
        }
      }
      visit(p * g.M + j, s, ok, canon);
    }
    if (!Prune) __syncthreads();  // pf_s is rewritten for the next prefix
  }
}

template <bool Largest>
struct ThreadTopK {
  double s[kMaxK];
  int64_t i[kMaxK];
  int n = 0, k = 1;
  __device__ void operator()(int64_t idx, double sc, bool ok, bool) {
    if (!ok) return;
    if (n == k && !better<Largest>(sc, idx, s[n - 1], i[n - 1])) return;
    int pos = n < k ? n++ : n - 1;
    while (pos > 0 && better<Largest>(sc, idx, s[pos - 1], i[pos - 1])) {
      s[pos] = s[pos - 1];
      i[pos] = i[pos - 1];
      --pos;
    }
    s[pos] = sc;
    i[pos] = idx;
  }
};

// Block merge: k rounds of a block-wide arg-best over each thread's next entry.
template <bool Largest, bool Prune>
__global__ void top_k_kernel(EnumerateArgs a, Geo g, int64_t start, int64_t end, int k,
                             int64_t* __restrict__ out_idx, double* __restrict__ out_score,
                             int* __restrict__ out_n) {
  ThreadTopK<Largest> t;
  t.k = k;
  walk<Prune>(a, g, start, end, t);
  __shared__ double rs[kThreads];
  __shared__ int64_t ri[kThreads];
  __shared__ int rt[kThreads];
  int head = 0, written = 0;
  for (int r = 0; r < k; ++r) {
    const int tid = threadIdx.x;
    rt[tid] = head < t.n ? tid : -1;
    rs[tid] = head < t.n ? t.s[head] : 0.0;
    ri[tid] = head < t.n ? t.i[head] : 0;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (tid < w) {
        const int o = tid + w;
        if (rt[o] >= 0 && (rt[tid] < 0 || better<Largest>(rs[o], ri[o], rs[tid], ri[tid]))) {
          rt[tid] = rt[o];
          rs[tid] = rs[o];
          ri[tid] = ri[o];
        }
      }
      __syncthreads();
    }
    const int winner = rt[0];
    if (winner < 0) break;  // uniform: every thread read the same rt[0]
    if (tid == 0) {
      out_idx[static_cast<int64_t>(blockIdx.x) * k + r] = ri[0];
      out_score[static_cast<int64_t>(blockIdx.x) * k + r] = rs[0];
    }
    if (tid == winner) ++head;
    ++written;
    __syncthreads();
  }
  if (threadIdx.x == 0) out_n[blockIdx.x] = written;
}

struct ThreadCount {
  unsigned long long count = 0, distinct = 0;
  unsigned int* hist = nullptr;  // shared, [bins + 2]
  int bins = 0;
  double hmin = 0.0, hmax = 1.0;
  __device__ void operator()(int64_t, double s, bool ok, bool canon) {
    if (!ok) return;
    ++count;
    distinct += canon;
    if (bins > 0) {
      int b;
      if (s < hmin) {
        b = 0;
      } else if (!(s < hmax)) {
        b = bins + 1;
      } else {
        const double t = __dmul_rn(__ddiv_rn(__dadd_rn(s, -hmin), __dadd_rn(hmax, -hmin)),
                                   static_cast<double>(bins));
        const int64_t q = static_cast<int64_t>(t);
        b = 1 + static_cast<int>(q < bins - 1 ? q : bins - 1);
      }
      atomicAdd(&hist[b], 1u);  // shared-memory histogram, flushed once per block
    }
  }
};

template <bool Prune>
__global__ void count_kernel(EnumerateArgs a, Geo g, int64_t start, int64_t end, int bins,
                             double hmin, double hmax, unsigned long long* __restrict__ hist,
                             unsigned long long* __restrict__ totals) {
  extern __shared__ unsigned int sh_hist[];
  for (int b = threadIdx.x; b < bins + 2; b += blockDim.x) sh_hist[b] = 0;
  __syncthreads();
  ThreadCount c;
  c.hist = sh_hist;
  c.bins = bins;
  c.hmin = hmin;
  c.hmax = hmax;
  walk<Prune>(a, g, start, end, c);
  __shared__ unsigned long long rc[kThreads], rd[kThreads];
  rc[threadIdx.x] = c.count;
  rd[threadIdx.x] = c.distinct;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      rc[threadIdx.x] += rc[threadIdx.x + w];
      rd[threadIdx.x] += rd[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(&totals[0], rc[0]);
    atomicAdd(&totals[1], rd[0]);
  }
  if (bins > 0)
    for (int b = threadIdx.x; b < bins + 2; b += blockDim.x)
      if (sh_hist[b]) atomicAdd(&hist[b], static_cast<unsigned long long>(sh_hist[b]));
}

int blocks_for(int64_t count, int64_t M) {
  const int64_t prefixes = count / M + 2;
  int64_t b = prefixes < 65535 * 4 ? prefixes : 65535 * 4;
  return static_cast<int>(b < 1 ? 1 : b);
}

}  // namespace

cudaError_t enumerate_prepare_launch(const EnumerateArgs& a, cudaStream_t stream) {
  const Geo g = make_geo(a);
  const int64_t blocks = (g.M + kThreads - 1) / kThreads;
  prepare_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, g);
  return cudaGetLastError();
}

cudaError_t enumerate_score_launch(const EnumerateArgs& a, int64_t start, int64_t count,
                                   const int64_t* indices, double* feat_out, double* score_out,
                                   cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const Geo g = make_geo(a);
  int64_t blocks = (count + kThreads - 1) / kThreads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  score_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, g, start, count, indices,
                                                                       feat_out, score_out);
  return cudaGetLastError();
}

int enumerate_top_k_blocks(int64_t count) {
  // Enough blocks to fill the GPU; each owns whole prefixes (M <= 4096 cells).
  const int64_t b = count / 4096 + 1;
  return static_cast<int>(b < 2048 ? b : 2048);
}

cudaError_t enumerate_top_k_launch(const EnumerateArgs& a, int64_t start, int64_t count, int k,
                                   bool largest, int blocks, int64_t* out_idx, double* out_score,
                                   int* out_n, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const Geo g = make_geo(a);
  const int64_t end = start + count;
  if (largest) {
    if (a.prune)
      top_k_kernel<true, true>
          <<<blocks, kThreads, 0, stream>>>(a, g, start, end, k, out_idx, out_score, out_n);
    else
      top_k_kernel<true, false>
          <<<blocks, kThreads, 0, stream>>>(a, g, start, end, k, out_idx, out_score, out_n);
  } else {
    if (a.prune)
      top_k_kernel<false, true>
          <<<blocks, kThreads, 0, stream>>>(a, g, start, end, k, out_idx, out_score, out_n);
    else
      top_k_kernel<false, false>
          <<<blocks, kThreads, 0, stream>>>(a, g, start, end, k, out_idx, out_score, out_n);
  }
  return cudaGetLastError();
}

cudaError_t enumerate_count_launch(const EnumerateArgs& a, int64_t start, int64_t count, int bins,
                                   double hist_min, double hist_max, unsigned long long* hist,
                                   unsigned long long* totals, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const Geo g = make_geo(a);
  const int blocks = blocks_for(count, g.M);
  const size_t shmem = static_cast<size_t>(bins + 2) * sizeof(unsigned int);
  if (a.prune)
    count_kernel<true><<<blocks, kThreads, shmem, stream>>>(a, g, start, start + count, bins,
                                                            hist_min, hist_max, hist, totals);
  else
    count_kernel<false><<<blocks, kThreads, shmem, stream>>>(a, g, start, start + count, bins,
                                                             hist_min, hist_max, hist, totals);
  return cudaGetLastError();
}

}  // namespace nas::cuda
