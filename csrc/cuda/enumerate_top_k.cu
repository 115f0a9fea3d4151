// CUDA kernel of nas::enumerate_top_k: per-block top-k lists, merged by the caller.
// Compiled, unverified: no GPU has run it yet.
//
// Per-thread lists: Cap entries (Cap >= k, a compile-time 1, 4, 16 or 64), best first,
// padded with sentinels that every real cell beats. Insertion is a fixed-length
// compare-and-swap pass and the block merge pops only entry 0 (shifting the list), so
// every array index is a compile-time constant after unrolling and the lists live in
// registers instead of local memory (ptxas -v, sm_90: stack frames of 160-304 bytes,
// the per-cell feature arrays, against 1,328-2,000 bytes with the former kMaxK-entry
// arrays). Cap = 64 (k > 16) is the exception: its list stays a local-memory array
// (rolled loops; unrolled, 1 KB of registers would spill anyway); the common k (the
// CLI's 10, the histogram's 1) take Cap <= 16.
#include "cuda/enumerate_scan.cuh"

namespace nas::cuda {
namespace {

using namespace scan;

// Unrolled (register) lists up to 16 entries; 64 would spill several KB of registers,
// so its loops stay rolled and its list is a local-memory array, as before.
template <int Cap>
constexpr int kUnroll = Cap <= 16 ? Cap : 1;

template <bool Largest, int Cap>
struct ThreadTopK {
  static constexpr double kWorst = Largest ? -__builtin_huge_val() : __builtin_huge_val();
  double s[Cap];
  int64_t i[Cap];

  __device__ ThreadTopK() {
#pragma unroll
    for (int r = 0; r < Cap; ++r) {
      s[r] = kWorst;     // no score is worse; a tie loses on the index
      i[r] = INT64_MAX;  // above every cell index
    }
  }
  __device__ bool has() const { return i[0] != INT64_MAX; }

  __device__ void operator()(int64_t idx, double sc, bool ok, bool) {
    if (!ok || !better<Largest>(sc, idx, s[Cap - 1], i[Cap - 1])) return;
    double cs = sc;
    int64_t ci = idx;
#pragma unroll kUnroll < Cap>
    for (int r = 0; r < Cap; ++r) {  // bubble the new entry to its place
      if (better<Largest>(cs, ci, s[r], i[r])) {
        const double ts = s[r];
        const int64_t ti = i[r];
        s[r] = cs;
        i[r] = ci;
        cs = ts;
        ci = ti;
      }
    }
  }

  __device__ void pop() {
#pragma unroll kUnroll < Cap>
    for (int r = 0; r + 1 < Cap; ++r) {
      s[r] = s[r + 1];
      i[r] = i[r + 1];
    }
    s[Cap - 1] = kWorst;
    i[Cap - 1] = INT64_MAX;
  }
};

// Block merge: k rounds of a block-wide arg-best over each thread's head entry.
template <bool Largest, bool Prune, int Cap>
__global__ void __launch_bounds__(kThreads)
    top_k_kernel(EnumerateArgs a, Geo g, int64_t start, int64_t end, int k,
                 int64_t* __restrict__ out_idx, double* __restrict__ out_score,
                 int64_t* __restrict__ out_n) {
  ThreadTopK<Largest, Cap> t;
  walk<Prune>(a, g, start, end, t);
  __shared__ double rs[kThreads];
  __shared__ int64_t ri[kThreads];
  __shared__ int rt[kThreads];
  int written = 0;
  const int tid = threadIdx.x;
  for (int r = 0; r < k; ++r) {
    rt[tid] = t.has() ? tid : -1;
    rs[tid] = t.s[0];
    ri[tid] = t.i[0];
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
    if (tid == winner) t.pop();
    ++written;
    __syncthreads();
  }
  if (tid == 0) out_n[blockIdx.x] = written;
}

template <bool Largest, bool Prune>
cudaError_t launch_cap(const EnumerateArgs& a, const Geo& g, int64_t start, int64_t end, int k,
                       int blocks, int64_t* out_idx, double* out_score, int64_t* out_n,
                       cudaStream_t stream) {
#define NAS_TOP_K_CAP(C)          \
  top_k_kernel<Largest, Prune, C> \
      <<<blocks, kThreads, 0, stream>>>(a, g, start, end, k, out_idx, out_score, out_n)
  if (k <= 1)
    NAS_TOP_K_CAP(1);
  else if (k <= 4)
    NAS_TOP_K_CAP(4);
  else if (k <= 16)
    NAS_TOP_K_CAP(16);
  else
    NAS_TOP_K_CAP(kMaxK);
#undef NAS_TOP_K_CAP
  return cudaGetLastError();
}

}  // namespace

int enumerate_top_k_blocks(int64_t count) {
  // Enough blocks to fill the GPU; each owns whole prefixes (M <= 4096 cells).
  const int64_t b = count / 4096 + 1;
  return static_cast<int>(b < 2048 ? b : 2048);
}

cudaError_t enumerate_top_k_launch(const EnumerateArgs& a, int64_t start, int64_t count, int k,
                                   bool largest, int blocks, int64_t* out_idx, double* out_score,
                                   int64_t* out_n, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const Geo g = make_geo(a);
  const int64_t end = start + count;
  if (largest)
    return a.prune ? launch_cap<true, true>(a, g, start, end, k, blocks, out_idx, out_score, out_n,
                                            stream)
                   : launch_cap<true, false>(a, g, start, end, k, blocks, out_idx, out_score, out_n,
                                             stream);
  return a.prune ? launch_cap<false, true>(a, g, start, end, k, blocks, out_idx, out_score, out_n,
                                           stream)
                 : launch_cap<false, false>(a, g, start, end, k, blocks, out_idx, out_score, out_n,
                                            stream);
}

}  // namespace nas::cuda
