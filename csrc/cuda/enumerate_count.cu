// CUDA kernel of nas::enumerate_count: qualifying cells, distinct pruned cells, a
// score histogram. Compiled, unverified: no GPU has run it yet.
#include "cuda/enumerate_scan.cuh"

namespace nas::cuda {
namespace {

using namespace scan;

struct ThreadCount {
  unsigned long long count = 0, distinct = 0;
  // Shared, [bins + 2], 64-bit: one block may count past 2**32 cells of a bin.
  unsigned long long* hist = nullptr;
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
      atomicAdd(&hist[b], 1ull);  // shared-memory histogram, flushed once per block
    }
  }
};

template <bool Prune>
__global__ void __launch_bounds__(kThreads)
    count_kernel(EnumerateArgs a, Geo g, int64_t start, int64_t end, int bins, double hmin,
                 double hmax, unsigned long long* __restrict__ hist,
                 unsigned long long* __restrict__ totals) {
  extern __shared__ unsigned long long sh_hist[];
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
      if (sh_hist[b]) atomicAdd(&hist[b], sh_hist[b]);
}

}  // namespace

cudaError_t enumerate_count_launch(const EnumerateArgs& a, int64_t start, int64_t count, int bins,
                                   double hist_min, double hist_max, unsigned long long* hist,
                                   unsigned long long* totals, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const Geo g = make_geo(a);
  const int blocks = blocks_for(count, g.M);
  // (kMaxBins + 2) * 8 bytes = 32.8 KB with the walk's ~5 KB and the reduction's 4 KB:
  // under the 48 KB a block may use without opting in.
  const size_t shmem = static_cast<size_t>(bins + 2) * sizeof(unsigned long long);
  if (a.prune)
    count_kernel<true><<<blocks, kThreads, shmem, stream>>>(a, g, start, start + count, bins,
                                                            hist_min, hist_max, hist, totals);
  else
    count_kernel<false><<<blocks, kThreads, shmem, stream>>>(a, g, start, start + count, bins,
                                                             hist_min, hist_max, hist, totals);
  return cudaGetLastError();
}

}  // namespace nas::cuda
