// CUDA kernels of nas::mixed_op and nas::mixed_op_backward (semantics in
// python/nas/ops/mixed_op.py).
//
// Tiled: a block of 32 x 8 threads works on 32 x 32 tiles (32 rows n by 32 columns d
// of one batch row b; grid-stride over tiles, 64-bit indices), each thread on 4 rows
// of one column. x (with the halo rows the pool windows need) and g are read once per
// tile from global memory with d across the warp (coalesced) into shared memory, where
// the windows read their neighbours. Param outputs stored as [B, D, N] (Conv1d output
// viewed as [B, N, D]: unit stride along n, N along d) would be read N elements apart
// across a warp; they are staged through shared memory with n across the warp and
// read transposed, and their gradients (which keep that layout) are written the same
// way, so every global access of a warp covers contiguous addresses. Per-element math
// (softmax in double, the avg weight, max_pool's order, its adjoint) comes from
// csrc/mixed_op.h, the functions the CPU kernels call. The backward gathers (each
// thread writes only its own dx) and reduces s_k per block into a fixed workspace,
// then one block finishes dalpha: no atomics, deterministic.
#include <cmath>
#include <type_traits>

#include "cuda/mixed_op.cuh"

namespace nas::cuda {
namespace {

constexpr int kTile = 32;                       // rows n and columns d of a tile
constexpr int kRowsPerPass = 8;                 // blockDim.y
constexpr int kThreads = kTile * kRowsPerPass;  // 256
constexpr int kRowsPerThread = kTile / kRowsPerPass;
constexpr int kPad = kTile + 1;  // pitch of tiles read by column: 32 distinct banks
constexpr int kQuantities = 3 + kMixedOpMaxParams;  // avg, max, skip, params

// softmax(alpha) weights of the plan's candidates (computed in double, as on the
// CPU, then rounded to T); absent ones get 0.
template <typename T>
struct Weights {
  T avg = 0, max = 0, skip = 0;
  T param[kMixedOpMaxParams] = {0, 0, 0, 0};
};

template <typename T>
__device__ Weights<T> softmax_weights(const T* __restrict__ alpha, const MixedOpPlan& plan) {
  double w[kMixedOpMaxK];
  mixed_op_softmax(alpha, plan.K, w);
  auto pick = [&](int k) { return k < 0 ? T(0) : static_cast<T>(w[k]); };
  Weights<T> out;
  out.avg = pick(plan.k_avg);
  out.max = pick(plan.k_max);
  out.skip = pick(plan.k_skip);
#pragma unroll
  for (int p = 0; p < kMixedOpMaxParams; ++p)
    out.param[p] = p < plan.num_params ? pick(plan.k_param[p]) : T(0);
  return out;
}

// Index (row) and value of the max of window m = {m-1, m, m+1} ∩ [0, N); xm points
// at row m's element, rows `pitch` elements apart.
template <typename T>
__device__ __forceinline__ int64_t window_argmax(const T* xm, int64_t m, int64_t N, int pitch,
                                                 T* value) {
  const int64_t lo = m > 0 ? m - 1 : m;
  const int64_t hi = m + 1 < N ? m + 1 : m;
  T best = xm[(lo - m) * pitch];
  int64_t arg = lo;
  for (int64_t j = lo + 1; j <= hi; ++j) {
    const T v = xm[(j - m) * pitch];
    if (mixed_op_beats(v, best)) {
      best = v;
      arg = j;
    }
  }
  *value = best;
  return arg;
}

struct TileAt {
  int64_t b, n0, d0;
};

// The kTile x kTile tiles of [B, N, D], in (b, n tile, d tile) order: one block's work
// per grid-stride step. The kernels walk them; the host sizes the grid by ``count``.
struct TileGrid {
  int64_t tiles_n, tiles_d, count;
  __host__ __device__ TileGrid(int64_t B, int64_t N, int64_t D)
      : tiles_n((N + kTile - 1) / kTile),
        tiles_d((D + kTile - 1) / kTile),
        count(B * tiles_n * tiles_d) {}
  __device__ __forceinline__ TileAt at(int64_t t) const {
    const int64_t td = t % tiles_d;
    const int64_t r = t / tiles_d;
    return {r / tiles_n, (r % tiles_n) * kTile, td * kTile};
  }
};

// Rows n_first .. n_first + R - 1 of one [N, D] batch row, column d = d0 + threadIdx.x,
// into s[r][threadIdx.x] (zero outside the tensor: the halo of the pool windows).
template <typename T, int R, int C>
__device__ __forceinline__ void stage_rows(T (&s)[R][C], const T* __restrict__ src, int64_t n_first,
                                           int64_t d, int64_t N, int64_t D) {
  for (int r = threadIdx.y; r < R; r += kRowsPerPass) {
    const int64_t n = n_first + r;
    s[r][threadIdx.x] = (n >= 0 && n < N && d < D) ? src[n * D + d] : T(0);
  }
}

// buf[dd][nn] = param[b, n0 + nn, d0 + dd] over the tile, read along whichever of n
// and d has unit stride (n for [B, D, N] storage), so the loads coalesce.
template <typename T>
__device__ __forceinline__ void stage_param(const T* __restrict__ p, int64_t sb, int64_t sn,
                                            int64_t sd, const TileAt& t, int64_t N, int64_t D,
                                            T (*buf)[kPad]) {
  const T* base = p + t.b * sb;
  if (sn == 1 && sd != 1) {  // uniform across the block
    for (int dd = threadIdx.y; dd < kTile; dd += kRowsPerPass) {
      const int64_t n = t.n0 + threadIdx.x, d = t.d0 + dd;
      if (n < N && d < D) buf[dd][threadIdx.x] = base[n + d * sd];
    }
  } else {
    for (int nn = threadIdx.y; nn < kTile; nn += kRowsPerPass) {
      const int64_t n = t.n0 + nn, d = t.d0 + threadIdx.x;
      if (n < N && d < D) buf[threadIdx.x][nn] = base[n * sn + d * sd];
    }
  }
}

template <typename T, bool AVG, bool MAX, bool SKIP>
__global__ void mixed_op_forward_kernel(const T* __restrict__ x,      // [B, N, D]
                                        const T* __restrict__ alpha,  // [K]
                                        MixedOpPlan plan, MixedOpParams prm,
                                        T* __restrict__ y,  // [B, N, D]
                                        int64_t B, int64_t N, int64_t D) {
  constexpr bool POOL = AVG || MAX;
  __shared__ T xs[kTile + 2][kTile];  // x rows n0 - 1 .. n0 + 32
  __shared__ T buf[kTile][kPad];      // one param's tile, [d][n]
  const Weights<T> w = softmax_weights(alpha, plan);
  const TileGrid tiles(B, N, D);
  const int tx = threadIdx.x;
  for (int64_t ti = blockIdx.x; ti < tiles.count; ti += gridDim.x) {
    const TileAt t = tiles.at(ti);
    const int64_t d = t.d0 + tx;
    const T* xb = x + t.b * N * D;
    if (POOL) {
      stage_rows(xs, xb, t.n0 - 1, d, N, D);
      __syncthreads();
    }
    T acc[kRowsPerThread];
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int nn = threadIdx.y + r * kRowsPerPass;
      const int64_t n = t.n0 + nn;
      acc[r] = 0;
      if (n >= N || d >= D) continue;
      const T v = POOL ? xs[nn + 1][tx] : xb[n * D + d];
      T a = 0;
      if (SKIP) a += w.skip * v;
      if (AVG) {
        T s = v;
        if (n > 0) s = xs[nn][tx] + s;
        if (n + 1 < N) s = s + xs[nn + 2][tx];
        a += (w.avg * mixed_op_inv_count<T>(n, N)) * s;
      }
      if (MAX) {
        T best;
        window_argmax(&xs[nn + 1][tx], n, N, kTile, &best);
        a += w.max * best;
      }
      acc[r] = a;
    }
    for (int p = 0; p < plan.num_params; ++p) {
      stage_param(static_cast<const T*>(prm.p[p]), prm.sb[p], prm.sn[p], prm.sd[p], t, N, D, buf);
      __syncthreads();
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        const int nn = threadIdx.y + r * kRowsPerPass;
        if (t.n0 + nn < N && d < D) acc[r] += w.param[p] * buf[tx][nn];
      }
      __syncthreads();  // buf is refilled for the next param
    }
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t n = t.n0 + threadIdx.y + r * kRowsPerPass;
      if (n < N && d < D) y[(t.b * N + n) * D + d] = acc[r];
    }
    if (POOL) __syncthreads();  // xs is refilled for the next tile
  }
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block (valid in thread 0 of it). scratch: 32 entries.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
  const int flat = threadIdx.y * blockDim.x + threadIdx.x;
  const int lane = flat % 32, warp = flat / 32;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x * blockDim.y + 31) / 32;
  v = flat < warps ? scratch[flat] : T(0);
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
  constexpr bool POOL = AVG || MAX;
  __shared__ T xs[kTile + 4][kTile];  // x rows n0 - 2 .. n0 + 33: windows of n - 1 and n + 1
  __shared__ T gs[kTile + 2][kPad];   // g rows n0 - 1 .. n0 + 32 (read by column for dn grads)
  __shared__ T buf[kTile][kPad];      // one param's tile, [d][n]
  __shared__ T scratch[32];
  const Weights<T> w = softmax_weights(alpha, plan);
  // Per-thread sums s_k = <g, op_k(x)>, in T (float32 for float32).
  T s[kQuantities];
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) s[q] = 0;
  const TileGrid tiles(B, N, D);
  const int tx = threadIdx.x;
  for (int64_t ti = blockIdx.x; ti < tiles.count; ti += gridDim.x) {
    const TileAt t = tiles.at(ti);
    const int64_t d = t.d0 + tx;
    const T* xb = x + t.b * N * D;
    const T* gb = g + t.b * N * D;
    if (POOL) {
      stage_rows(xs, xb, t.n0 - 2, d, N, D);
    }
    stage_rows(gs, gb, t.n0 - 1, d, N, D);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int nn = threadIdx.y + r * kRowsPerPass;
      const int64_t n = t.n0 + nn;
      if (n >= N || d >= D) continue;
      const bool has_l = n > 0, has_r = n + 1 < N;
      const T gv = gs[nn + 1][tx];
      const T v = POOL ? xs[nn + 2][tx] : xb[n * D + d];
      T dxv = 0;
      if (SKIP) {
        dxv += w.skip * gv;
        s[2] += gv * v;
      }
      if (AVG) {
        // Window m sends (w_avg / count(m)) g[m] to each of its valid elements.
        auto wa = [&](int64_t m) { return w.avg * mixed_op_inv_count<T>(m, N); };
        T a = v;
        if (has_l) a = xs[nn + 1][tx] + a;
        if (has_r) a = a + xs[nn + 3][tx];
        s[0] += gv * (a * mixed_op_inv_count<T>(n, N));
        T adj = wa(n) * gv;
        if (has_l) adj += wa(n - 1) * gs[nn][tx];
        if (has_r) adj += wa(n + 1) * gs[nn + 2][tx];
        dxv += adj;
      }
      if (MAX) {
        // Window m sends w_max g[m] to its argmax: gather from the windows n-1, n, n+1.
        T best, unused;
        if (window_argmax(&xs[nn + 2][tx], n, N, kTile, &best) == n) dxv += w.max * gv;
        s[1] += gv * best;
        if (has_l && window_argmax(&xs[nn + 1][tx], n - 1, N, kTile, &unused) == n)
          dxv += w.max * gs[nn][tx];
        if (has_r && window_argmax(&xs[nn + 3][tx], n + 1, N, kTile, &unused) == n)
          dxv += w.max * gs[nn + 2][tx];
      }
      if (dx != nullptr) dx[(t.b * N + n) * D + d] = dxv;  // uniform: null when not needed
    }
    for (int p = 0; p < plan.num_params; ++p) {
      if (need_dalpha) {  // uniform
        stage_param(static_cast<const T*>(prm.p[p]), prm.sb[p], prm.sn[p], prm.sd[p], t, N, D, buf);
        __syncthreads();
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
          const int nn = threadIdx.y + r * kRowsPerPass;
          if (t.n0 + nn < N && d < D) s[3 + p] += gs[nn + 1][tx] * buf[tx][nn];
        }
        __syncthreads();  // buf is refilled for the next param
      }
      T* dp = static_cast<T*>(prm.dp[p]);
      if (dp == nullptr) continue;  // uniform: null when d param_outputs is not needed
      dp += t.b * prm.dsb[p];
      if (prm.dsn[p] == 1 && prm.dsd[p] != 1) {
        // [B, D, N] storage: n across the warp, g read by column from shared memory.
        for (int dd = threadIdx.y; dd < kTile; dd += kRowsPerPass) {
          const int64_t n = t.n0 + tx, dcol = t.d0 + dd;
          if (n < N && dcol < D) dp[n + dcol * prm.dsd[p]] = w.param[p] * gs[tx + 1][dd];
        }
      } else {
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
          const int nn = threadIdx.y + r * kRowsPerPass;
          const int64_t n = t.n0 + nn;
          if (n < N && d < D) dp[n * prm.dsn[p] + d * prm.dsd[p]] = w.param[p] * gs[nn + 1][tx];
        }
      }
    }
    __syncthreads();  // xs and gs are refilled for the next tile
  }
  if (!need_dalpha) return;
  // Block reduction of each s_k into partials[blockIdx.x, k] (k: position in alpha).
  int slot[kQuantities] = {plan.k_avg, plan.k_max, plan.k_skip};
#pragma unroll
  for (int p = 0; p < kMixedOpMaxParams; ++p)
    slot[3 + p] = p < plan.num_params ? plan.k_param[p] : -1;
  double* out = partials + static_cast<int64_t>(blockIdx.x) * kMixedOpMaxK;
  const int flat = threadIdx.y * blockDim.x + threadIdx.x;
  if (flat < kMixedOpMaxK) out[flat] = 0.0;
#pragma unroll
  for (int q = 0; q < kQuantities; ++q) {
    if (slot[q] < 0) continue;  // uniform across the block
    const T total_q = block_sum(s[q], scratch);
    if (flat == 0) out[slot[q]] = static_cast<double>(total_q);
  }
}

// One block: s_k = sum of partials over blocks (double), then dalpha by softmax's
// adjoint (mixed_op_softmax_adjoint, as on the CPU).
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
    double w[kMixedOpMaxK], da[kMixedOpMaxK];
    mixed_op_softmax(alpha, K, w);
    mixed_op_softmax_adjoint(w, s, K, da);
    for (int k = 0; k < K; ++k) dalpha[k] = static_cast<T>(da[k]);
  }
}

int64_t tile_count(int64_t B, int64_t N, int64_t D) { return TileGrid(B, N, D).count; }

int64_t grid_for(int64_t tiles, int64_t cap) { return tiles < 1 ? 1 : (tiles > cap ? cap : tiles); }

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
  if (B * N * D == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(grid_for(tile_count(B, N, D), int64_t{1} << 20));
  dispatch_inline(plan.inline_mask(), [&](auto avg, auto max, auto skip) {
    mixed_op_forward_kernel<T, decltype(avg)::value, decltype(max)::value, decltype(skip)::value>
        <<<blocks, dim3(kTile, kRowsPerPass), 0, stream>>>(x, alpha, plan, params, y, B, N, D);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t mixed_op_backward_launch(const T* grad, const T* x, const T* alpha,
                                     const MixedOpPlan& plan, const MixedOpParams& params, T* dx,
                                     T* dalpha, double* partials, int64_t B, int64_t N, int64_t D,
                                     cudaStream_t stream) {
  const bool need_dalpha = dalpha != nullptr;
  int blocks = 0;
  if (B * N * D > 0) {
    blocks = static_cast<int>(grid_for(tile_count(B, N, D), kMixedOpMaxBlocks));
    dispatch_inline(plan.inline_mask(), [&](auto avg, auto max, auto skip) {
      mixed_op_backward_kernel<T, decltype(avg)::value, decltype(max)::value, decltype(skip)::value>
          <<<blocks, dim3(kTile, kRowsPerPass), 0, stream>>>(grad, x, alpha, plan, params, dx,
                                                             partials, need_dalpha, B, N, D);
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
