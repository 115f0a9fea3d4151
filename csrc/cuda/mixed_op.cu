// CUDA kernels of nas::mixed_op and nas::mixed_op_backward (semantics in
// python/nas/ops/mixed_op.py). One thread per element of [B, N, D] (grid-stride,
// 64-bit indices); D is innermost so a warp reads consecutive addresses. The
// backward gathers (each thread writes only its own dx), and reduces s_k per block
// into a fixed workspace, then one block finishes dalpha: no atomics, deterministic.
#include <cmath>
#include <type_traits>

#include "cuda/mixed_op.cuh"

namespace nas::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kQuantities = 3 + kMixedOpMaxParams;  // avg, max, skip, params

// A later element wins only if strictly greater or NaN: the first maximum of the
// window wins (max_pool1d's rule), and NaN propagates.
template <typename T>
__device__ __forceinline__ bool beats(T v, T best) {
  return v > best || isnan(v);
}

// softmax(alpha) weights of the plan's candidates; absent ones get 0.
template <typename T>
struct Weights {
  T avg = 0, max = 0, skip = 0;
  T param[kMixedOpMaxParams] = {0, 0, 0, 0};
};

template <typename T>
__device__ Weights<T> softmax_weights(const T* __restrict__ alpha, const MixedOpPlan& plan) {
  T m = alpha[0];
  for (int k = 1; k < plan.K; ++k) m = fmax(m, alpha[k]);
  T sum = 0;
  for (int k = 0; k < plan.K; ++k) sum += exp(alpha[k] - m);
  auto w = [&](int k) { return k < 0 ? T(0) : exp(alpha[k] - m) / sum; };
  Weights<T> out;
  out.avg = w(plan.k_avg);
  out.max = w(plan.k_max);
  out.skip = w(plan.k_skip);
#pragma unroll
  for (int p = 0; p < kMixedOpMaxParams; ++p)
    out.param[p] = p < plan.num_params ? w(plan.k_param[p]) : T(0);
  return out;
}

// Index (row) and value of the max of window m = {m-1, m, m+1} ∩ [0, N); xm points
// at x[b, m, d].
template <typename T>
__device__ __forceinline__ int64_t window_argmax(const T* __restrict__ xm, int64_t m, int64_t N,
                                                 int64_t D, T* value) {
  const int64_t lo = m > 0 ? m - 1 : m;
  const int64_t hi = m + 1 < N ? m + 1 : m;
  T best = xm[(lo - m) * D];
  int64_t arg = lo;
  for (int64_t j = lo + 1; j <= hi; ++j) {
    const T v = xm[(j - m) * D];
    if (beats(v, best)) {
      best = v;
      arg = j;
    }
  }
  *value = best;
  return arg;
}

template <typename T>
__device__ __forceinline__ T param_at(const MixedOpParams& prm, int p, int64_t b, int64_t n,
                                      int64_t d) {
  return static_cast<const T*>(prm.p[p])[b * prm.sb[p] + n * prm.sn[p] + d * prm.sd[p]];
}

template <typename T, bool AVG, bool MAX, bool SKIP>
__global__ void mixed_op_forward_kernel(const T* __restrict__ x,      // [B, N, D]
                                        const T* __restrict__ alpha,  // [K]
                                        MixedOpPlan plan, MixedOpParams prm,
                                        T* __restrict__ y,  // [B, N, D]
                                        int64_t B, int64_t N, int64_t D) {
  const Weights<T> w = softmax_weights(alpha, plan);
  const int64_t total = B * N * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t d = i % D;
    const int64_t r = i / D;
    const int64_t n = r % N;
    const int64_t b = r / N;
    const bool has_l = n > 0, has_r = n + 1 < N;
    const T v = x[i];
    T acc = 0;
    if (SKIP) acc += w.skip * v;
    if (AVG) {
      T s = v;
      if (has_l) s = x[i - D] + s;
      if (has_r) s = s + x[i + D];
      acc += w.avg * s / static_cast<T>(mixed_op_window_count(n, N));
    }
    if (MAX) {
      T best;
      window_argmax(x + i, n, N, D, &best);
      acc += w.max * best;
    }
    for (int p = 0; p < plan.num_params; ++p) acc += w.param[p] * param_at<T>(prm, p, b, n, d);
    y[i] = acc;
  }
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block (valid in thread 0). scratch: 32 entries.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  v = threadIdx.x < warps ? scratch[threadIdx.x] : T(0);
  if (warp == 0) v = warp_sum(v);
  return v;
}

template <typename T, bool AVG, bool MAX, bool SKIP>
__global__ void mixed_op_backward_kernel(const T* __restrict__ g,      // [B, N, D]
                                         const T* __restrict__ x,      // [B, N, D]
                                         const T* __restrict__ alpha,  // [K]
                                         MixedOpPlan plan, MixedOpParams prm,
                                         T* __restrict__ dx,             // [B, N, D] or null
                                         double* __restrict__ partials,  // [grid, kMixedOpMaxK]
                                         bool need_dalpha, int64_t B, int64_t N, int64_t D) {
  __shared__ T scratch[32];
  const Weights<T> w = softmax_weights(alpha, plan);
  // Per-thread sums s_k = <g, op_k(x)>, in T (float32 for float32).
  T s[kQuantities];
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) s[q] = 0;
  const int64_t total = B * N * D;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t d = i % D;
    const int64_t r = i / D;
    const int64_t n = r % N;
    const int64_t b = r / N;
    const bool has_l = n > 0, has_r = n + 1 < N;
    const T gv = g[i];
    const T v = x[i];
    T dxv = 0;
    if (SKIP) {
      dxv += w.skip * gv;
      s[2] += gv * v;
    }
    if (AVG) {
      // Window m sends g[m] / count(m) to each of its valid elements.
      auto count = [&](int64_t m) { return static_cast<T>(mixed_op_window_count(m, N)); };
      T a = v;
      if (has_l) a = x[i - D] + a;
      if (has_r) a = a + x[i + D];
      s[0] += gv * (a / count(n));
      T adj = gv / count(n);
      if (has_l) adj += g[i - D] / count(n - 1);
      if (has_r) adj += g[i + D] / count(n + 1);
      dxv += w.avg * adj;
    }
    if (MAX) {
      // Window m sends g[m] to its argmax: gather from the windows n-1, n, n+1.
      T best, unused;
      if (window_argmax(x + i, n, N, D, &best) == n) dxv += w.max * gv;
      s[1] += gv * best;
      if (has_l && window_argmax(x + i - D, n - 1, N, D, &unused) == n) dxv += w.max * g[i - D];
      if (has_r && window_argmax(x + i + D, n + 1, N, D, &unused) == n) dxv += w.max * g[i + D];
    }
#pragma unroll
    for (int p = 0; p < kMixedOpMaxParams; ++p) {
      if (p < plan.num_params) {
        if (need_dalpha) s[3 + p] += gv * param_at<T>(prm, p, b, n, d);
        if (prm.dp[p] != nullptr)  // uniform: null when d param_outputs is not needed
          static_cast<T*>(prm.dp[p])[b * prm.dsb[p] + n * prm.dsn[p] + d * prm.dsd[p]] =
              w.param[p] * gv;
      }
    }
    if (dx != nullptr) dx[i] = dxv;  // uniform: null when dx is not needed
  }
  if (!need_dalpha) return;
  // Block reduction of each s_k into partials[blockIdx.x, k] (k: position in alpha).
  int slot[kQuantities] = {plan.k_avg, plan.k_max, plan.k_skip};
#pragma unroll
  for (int p = 0; p < kMixedOpMaxParams; ++p)
    slot[3 + p] = p < plan.num_params ? plan.k_param[p] : -1;
  double* out = partials + static_cast<int64_t>(blockIdx.x) * kMixedOpMaxK;
  if (threadIdx.x < kMixedOpMaxK) out[threadIdx.x] = 0.0;
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) {
    if (slot[q] < 0) continue;  // uniform across the block
    const T total_q = block_sum(s[q], scratch);
    if (threadIdx.x == 0) out[slot[q]] = static_cast<double>(total_q);
  }
}

// One block: s_k = sum of partials over blocks (double), then
// dalpha_k = w_k (s_k - sum_j w_j s_j), softmax's adjoint.
template <typename T>
__global__ void mixed_op_dalpha_kernel(const T* __restrict__ alpha,
                                       const double* __restrict__ partials, int blocks, int K,
                                       T* __restrict__ dalpha) {
  __shared__ double scratch[32];
  __shared__ double s[kMixedOpMaxK];
  for (int k = 0; k < K; ++k) {
    double v = 0;
    for (int j = threadIdx.x; j < blocks; j += blockDim.x) v += partials[j * kMixedOpMaxK + k];
    v = block_sum(v, scratch);
    if (threadIdx.x == 0) s[k] = v;
  }
  if (threadIdx.x == 0) {
    double m = static_cast<double>(alpha[0]);
    for (int k = 1; k < K; ++k) m = fmax(m, static_cast<double>(alpha[k]));
    double w[kMixedOpMaxK], sum = 0;
    for (int k = 0; k < K; ++k) sum += (w[k] = exp(static_cast<double>(alpha[k]) - m));
    double mean = 0;
    for (int k = 0; k < K; ++k) mean += (w[k] /= sum) * s[k];
    for (int k = 0; k < K; ++k) dalpha[k] = static_cast<T>(w[k] * (s[k] - mean));
  }
}

int64_t grid_for(int64_t total, int64_t cap) {
  int64_t blocks = (total + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > cap ? cap : blocks);
}

// Calls fn(std::bool_constant<AVG>, <MAX>, <SKIP>) for the plan's inline op set (C++17).
template <typename F>
void dispatch_inline(int mask, F&& fn) {
  using F_ = std::false_type;
  using T_ = std::true_type;
  switch (mask) {
    case 0:
      return fn(F_{}, F_{}, F_{});
    case 1:
      return fn(T_{}, F_{}, F_{});
    case 2:
      return fn(F_{}, T_{}, F_{});
    case 3:
      return fn(T_{}, T_{}, F_{});
    case 4:
      return fn(F_{}, F_{}, T_{});
    case 5:
      return fn(T_{}, F_{}, T_{});
    case 6:
      return fn(F_{}, T_{}, T_{});
    default:
      return fn(T_{}, T_{}, T_{});
  }
}

}  // namespace

template <typename T>
cudaError_t mixed_op_forward_launch(const T* x, const T* alpha, const MixedOpPlan& plan,
                                    const MixedOpParams& params, T* y, int64_t B, int64_t N,
                                    int64_t D, cudaStream_t stream) {
  const int64_t total = B * N * D;
  if (total == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(grid_for(total, int64_t{1} << 20));
  dispatch_inline(plan.inline_mask(), [&](auto avg, auto max, auto skip) {
    mixed_op_forward_kernel<T, decltype(avg)::value, decltype(max)::value, decltype(skip)::value>
        <<<blocks, kThreads, 0, stream>>>(x, alpha, plan, params, y, B, N, D);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t mixed_op_backward_launch(const T* grad, const T* x, const T* alpha,
                                     const MixedOpPlan& plan, const MixedOpParams& params, T* dx,
                                     T* dalpha, double* partials, int64_t B, int64_t N, int64_t D,
                                     cudaStream_t stream) {
  const bool need_dalpha = dalpha != nullptr;
  const int64_t total = B * N * D;
  int blocks = 0;
  if (total > 0) {
    blocks = static_cast<int>(grid_for(total, kMixedOpMaxBlocks));
    dispatch_inline(plan.inline_mask(), [&](auto avg, auto max, auto skip) {
      mixed_op_backward_kernel<T, decltype(avg)::value, decltype(max)::value, decltype(skip)::value>
          <<<blocks, kThreads, 0, stream>>>(grad, x, alpha, plan, params, dx, partials, need_dalpha,
                                            B, N, D);
    });
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (!need_dalpha) return cudaSuccess;
  mixed_op_dalpha_kernel<T><<<1, kThreads, 0, stream>>>(alpha, partials, blocks, plan.K, dalpha);
  return cudaGetLastError();
}

#define NAS_MIXED_OP_INSTANTIATE(T)                                                            \
  template cudaError_t mixed_op_forward_launch<T>(const T*, const T*, const MixedOpPlan&,      \
                                                  const MixedOpParams&, T*, int64_t, int64_t,  \
                                                  int64_t, cudaStream_t);                      \
  template cudaError_t mixed_op_backward_launch<T>(                                            \
      const T*, const T*, const T*, const MixedOpPlan&, const MixedOpParams&, T*, T*, double*, \
      int64_t, int64_t, int64_t, cudaStream_t);
NAS_MIXED_OP_INSTANTIATE(float)
NAS_MIXED_OP_INSTANTIATE(double)
#undef NAS_MIXED_OP_INSTANTIATE

}  // namespace nas::cuda
