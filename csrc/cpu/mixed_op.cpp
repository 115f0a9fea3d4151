// CPU kernels of nas::mixed_op and nas::mixed_op_backward (schema in csrc/ops.cpp,
// semantics in python/nas/ops/mixed_op.py).
//
// Layout: x, grad, y, dx are [B, N, D] contiguous; param_outputs may have any strides
// (conv outputs usually arrive as [B, D, N] viewed as [B, N, D]: "dn"), and each
// d(param_output) takes its param's layout when dn, else [B, N, D] contiguous.
// Work is split over B with at::parallel_for; each batch row runs its N rows in
// order and the innermost loop runs over D (contiguous, no branches: the set of
// inline ops and the edge rows are template parameters).
#include "mixed_op.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <vector>

#include "mixed_op_args.h"

// Force inlining into the per-ISA entry points below, so each is compiled for its ISA.
#define NAS_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NAS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define NAS_TARGET_AVX2
#endif

namespace nas {
namespace {

// softmax(alpha) in double (K <= 8): the helper the CUDA kernels use too.
std::vector<double> softmax_weights(const at::Tensor& alpha) {
  const at::Tensor a = alpha.contiguous();
  const int64_t K = a.numel();
  std::vector<double> w(K);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "mixed_op_softmax",
                             [&] { mixed_op_softmax(a.const_data_ptr<scalar_t>(), K, w.data()); });
  return w;
}

// A parametric output: base pointer and element strides of [B, N, D]. dn: stored as
// a contiguous [B, D, N] tensor (what Conv1d(...).transpose(1, 2) returns); those are
// mixed per batch row in their own layout, with one W x W-blocked transpose of a
// cache-resident slab (y's or g's), instead of strided loads in the row loop.
template <typename T>
struct Strided {
  const T* p;
  int64_t sb, sn, sd;
  bool dn;
  const T* row(int64_t b, int64_t n) const { return p + b * sb + n * sn; }
  const T* slab(int64_t b) const { return p + b * sb; }
};

template <typename T>
Strided<T> strided(const at::Tensor& t) {
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2), mixed_op_dn_layout(t)};
}

// Prefetch hints, one per 64-byte line, for elements [0, count) of p. The dn phase
// reads whole [D, N] slabs after the row loop, one stream per param; hinting them
// during the row loop overlaps their DRAM latency with the inline ops' arithmetic.
template <typename T>
NAS_INLINE void prefetch_lines(const T* p, int64_t count, bool write) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t i = 0; i < count; i += kLine) {
    if (write) {
      __builtin_prefetch(p + i, 1, 3);
    } else {
      __builtin_prefetch(p + i, 0, 3);
    }
  }
}

// A later element wins only if strictly greater or NaN: the first maximum of the
// window wins (max_pool1d's rule), and NaN propagates. Spelled with || and
// __builtin_isnan: GCC 12 if-converts (vectorises) this form, not `| (v != v)`.
template <typename T>
NAS_INLINE bool beats(T v, T best) {
  return (v > best) || __builtin_isnan(v);
}

// Coefficients of the inline ops for one row: wa = w_avg / valid count.
template <typename T>
struct RowCoef {
  T wa, wm, ws, inv_cnt;
};

// y[n] = inline ops of rows (n-1, n, n+1); L / R: the row has a left / right neighbour.
template <typename T, bool L, bool R, bool AVG, bool MAX, bool SKIP>
NAS_INLINE void forward_row(const T* __restrict__ xl, const T* __restrict__ xc,
                            const T* __restrict__ xr,  // [D] rows of x
                            T* __restrict__ y,         // [D]
                            int64_t D, RowCoef<T> c) {
  for (int64_t d = 0; d < D; ++d) {
    const T v = xc[d];
    T acc = 0;
    if constexpr (SKIP) acc += c.ws * v;
    if constexpr (AVG) {
      T s = v;
      if constexpr (L) s = xl[d] + s;
      if constexpr (R) s = s + xr[d];
      acc += c.wa * s;
    }
    if constexpr (MAX) {
      T b = v;
      if constexpr (L) {
        b = xl[d];
        b = beats(v, b) ? v : b;
      }
      if constexpr (R) {
        const T r = xr[d];
        b = beats(r, b) ? r : b;
      }
      acc += c.wm * b;
    }
    y[d] = acc;
  }
}

// GCC/Clang vector extensions (32 bytes; split into two SSE registers on a baseline
// x86-64 build). GCC 12 does not if-convert the max routing below in a plain loop,
// so the backward's row loop is written once over V = T (the tail) or V = Vec<T>.
template <typename T, int VB>
struct VecOf {
  typedef T type __attribute__((vector_size(VB)));
};
template <typename T, int VB>
using Vec = typename VecOf<T, VB>::type;

template <typename V, typename T>
NAS_INLINE V load(const T* p) {
  if constexpr (std::is_same_v<V, T>) {
    return *p;
  } else {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
}

template <typename V, typename T>
NAS_INLINE void store(T* p, V v) {
  if constexpr (std::is_same_v<V, T>) {
    *p = v;
  } else {
    std::memcpy(p, &v, sizeof(V));
  }
}

// In-register transpose of a W x W block (W = lanes of V): v[i][j] -> v[j][i].
// __builtin_shufflevector with constant indices becomes unpck/shufps/perm2f128 on
// AVX2 and unpck on SSE2, so a block costs about 3 shuffles per row instead of W^2
// scalar moves.
template <typename V, int W>
NAS_INLINE void transpose_regs(V* v) {
  if constexpr (W == 8) {
    // Two unpack stages inside each 128-bit half, then swap the halves.
    V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
      t[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
      for (int j = 0; j < 2; ++j) {
        u[i + 2 * j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 2 * j + 1] =
            __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
      }
    }
    for (int j = 0; j < 4; ++j) {
      v[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
      v[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
  } else if constexpr (W == 4) {
    // Two rounds of interleaving rows i and i + 2 (a perfect shuffle each).
    for (int round = 0; round < 2; ++round) {
      const V n0 = __builtin_shufflevector(v[0], v[2], 0, 4, 1, 5);
      const V n1 = __builtin_shufflevector(v[0], v[2], 2, 6, 3, 7);
      const V n2 = __builtin_shufflevector(v[1], v[3], 0, 4, 1, 5);
      const V n3 = __builtin_shufflevector(v[1], v[3], 2, 6, 3, 7);
      v[0] = n0;
      v[1] = n1;
      v[2] = n2;
      v[3] = n3;
    }
  } else {
    static_assert(W == 2, "transpose_regs: W must be 2, 4 or 8");
    const V n0 = __builtin_shufflevector(v[0], v[1], 0, 2);
    v[1] = __builtin_shufflevector(v[0], v[1], 1, 3);
    v[0] = n0;
  }
}

// dst[c * R + r] = src[r * C + c] (+= when ADD): src [R, C] -> dst [C, R], in W x W
// register blocks (W = VB / sizeof(T)); the ragged edges (R or C not a multiple of
// W, e.g. N = 42) go element by element.
template <typename T, int VB, bool ADD>
NAS_INLINE void transpose_slab(const T* __restrict__ src, int64_t R, int64_t C,
                               T* __restrict__ dst) {
  constexpr int W = VB / sizeof(T);
  using V = Vec<T, VB>;
  const int64_t RW = R - R % W, CW = C - C % W;
  for (int64_t r0 = 0; r0 < RW; r0 += W) {
    for (int64_t c0 = 0; c0 < CW; c0 += W) {
      V v[W];
      for (int i = 0; i < W; ++i) v[i] = load<V>(src + (r0 + i) * C + c0);
      transpose_regs<V, W>(v);
      for (int j = 0; j < W; ++j) {
        T* o = dst + (c0 + j) * R + r0;
        if constexpr (ADD) {
          store(o, load<V>(o) + v[j]);
        } else {
          store(o, v[j]);
        }
      }
    }
    for (int64_t c = CW; c < C; ++c) {
      for (int64_t r = r0; r < r0 + W; ++r) {
        if constexpr (ADD) {
          dst[c * R + r] += src[r * C + c];
        } else {
          dst[c * R + r] = src[r * C + c];
        }
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t r = RW; r < R; ++r) {
      if constexpr (ADD) {
        dst[c * R + r] += src[r * C + c];
      } else {
        dst[c * R + r] = src[r * C + c];
      }
    }
  }
}

// Element (or vector of elements) d of backward row n. Scatters into dx rows n-1
// (+=), n (+= after row n-1 wrote it, else =) and n+1 (=, its first write), and
// accumulates s_k = <g, op_k(x)> per lane.
// DX = false: dx is not needed; only the s_k are accumulated.
template <typename T, typename V, bool L, bool R, bool AVG, bool MAX, bool SKIP, bool DX>
NAS_INLINE void backward_elem(const T* __restrict__ xl, const T* __restrict__ xc,
                              const T* __restrict__ xr, const T* __restrict__ g,
                              T* __restrict__ dxl, T* __restrict__ dxc, T* __restrict__ dxr,
                              T* __restrict__ s_avg, T* __restrict__ s_max, T* __restrict__ s_skip,
                              int64_t d, const RowCoef<T>& c) {
  const V gv = load<V>(g + d);
  const V v = load<V>(xc + d);
  const V zero{};
  V own = zero, left = zero, right = zero;
  if constexpr (SKIP) {
    own = c.ws * gv;
    store(s_skip + d, load<V>(s_skip + d) + gv * v);
  }
  if constexpr (AVG) {
    V s = v;
    if constexpr (L) s = load<V>(xl + d) + s;
    if constexpr (R) s = s + load<V>(xr + d);
    store(s_avg + d, load<V>(s_avg + d) + gv * (s * c.inv_cnt));
    const V ga = c.wa * gv;
    own = own + ga;
    if constexpr (L) left = ga;
    if constexpr (R) right = ga;
  }
  if constexpr (MAX) {
    // Window order left, centre, right; see beats(). Selects only, no branches.
    const V gm = c.wm * gv;
    V b = v;
    V to_lc = gm;  // what the left/centre winner receives
    if constexpr (R) {
      // Decide the left/centre winner first, then whether the right beats it.
      V lc = v;
      if constexpr (L) {
        const V l = load<V>(xl + d);
        lc = mixed_op_beats(v, l) ? v : l;
      }
      const V r = load<V>(xr + d);
      const auto tr = mixed_op_beats(r, lc);
      b = tr ? r : lc;
      right = right + (tr ? gm : zero);
      to_lc = tr ? zero : gm;
    }
    if constexpr (L) {
      const V l = load<V>(xl + d);
      const auto tc = mixed_op_beats(v, l);
      if constexpr (!R) b = tc ? v : l;
      own = own + (tc ? to_lc : zero);
      left = left + (tc ? zero : to_lc);
    } else {
      own = own + to_lc;
    }
    store(s_max + d, load<V>(s_max + d) + gv * b);
  }
  if constexpr (!DX) return;
  if constexpr (L) {
    store(dxl + d, load<V>(dxl + d) + left);
    store(dxc + d, load<V>(dxc + d) + own);
  } else {
    store(dxc + d, own);
  }
  if constexpr (R) store(dxr + d, right);
}

template <typename T, int VB, bool L, bool R, bool AVG, bool MAX, bool SKIP, bool DX>
NAS_INLINE void backward_row(const T* xl, const T* xc, const T* xr, const T* g,  // [D] rows
                             T* dxl, T* dxc, T* dxr,                             // [D] rows
                             T* s_avg, T* s_max, T* s_skip,  // [D] lane accumulators
                             int64_t D, const RowCoef<T>& c) {
  constexpr int64_t W = VB / sizeof(T);
  int64_t d = 0;
  for (; d + W <= D; d += W)
    backward_elem<T, Vec<T, VB>, L, R, AVG, MAX, SKIP, DX>(xl, xc, xr, g, dxl, dxc, dxr, s_avg,
                                                           s_max, s_skip, d, c);
  for (; d < D; ++d)
    backward_elem<T, T, L, R, AVG, MAX, SKIP, DX>(xl, xc, xr, g, dxl, dxc, dxr, s_avg, s_max,
                                                  s_skip, d, c);
}

// AVX2 + FMA entry points when the CPU has them (the build targets baseline x86-64).
// NAS_CPU_BASELINE=1 forces the baseline path (tests run both).
inline bool use_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         std::getenv("NAS_CPU_BASELINE") == nullptr;
  return ok;
#else
  return false;
#endif
}

template <typename T>
struct Ctx {
  const T* x;  // [B, N, D] contiguous
  int64_t B, N, D;
  T w_avg, w_max, w_skip;
  std::vector<Strided<T>> params;
  std::vector<T> w_params;
};

template <typename T>
NAS_INLINE RowCoef<T> coef(const Ctx<T>& c, int64_t n) {
  const T inv = mixed_op_inv_count<T>(n, c.N);
  return {c.w_avg * inv, c.w_max, c.w_skip, inv};
}

// Batch rows [b0, b1): the body of forward_impl's parallel_for, compiled once per ISA.
template <typename T, int VB, bool AVG, bool MAX, bool SKIP>
NAS_INLINE void forward_batches(const Ctx<T>& c, T* y, bool any_dn, int64_t b0, int64_t b1) {
  const int64_t N = c.N, D = c.D;
  std::vector<T> mix_dn(any_dn ? N * D : 0);  // [D, N]: sum of w_p P_p over dn params
  for (int64_t b = b0; b < b1; ++b) {
    const T* xb = c.x + b * N * D;
    T* yb = y + b * N * D;
    for (int64_t n = 0; n < N; ++n) {
      const T* xc = xb + n * D;
      const RowCoef<T> k = coef(c, n);
      if (any_dn) {
        // Pull this batch row's dn slabs into cache while the inline ops run: the dn
        // phase below then finds them there instead of waiting on DRAM.
        for (const auto& pp : c.params) {
          if (pp.dn) prefetch_lines(pp.slab(b) + n * D, D, false);
        }
      }
      if (N == 1) {
        forward_row<T, false, false, AVG, MAX, SKIP>(xc, xc, xc, yb, D, k);
      } else if (n == 0) {
        forward_row<T, false, true, AVG, MAX, SKIP>(xc, xc, xc + D, yb, D, k);
      } else if (n + 1 == N) {
        forward_row<T, true, false, AVG, MAX, SKIP>(xc - D, xc, xc, yb + n * D, D, k);
      } else {
        forward_row<T, true, true, AVG, MAX, SKIP>(xc - D, xc, xc + D, yb + n * D, D, k);
      }
      T* __restrict__ yr = yb + n * D;
      for (size_t p = 0; p < c.params.size(); ++p) {
        if (c.params[p].dn) continue;
        const T* __restrict__ pr = c.params[p].row(b, n);
        const T wp = c.w_params[p];
        const int64_t sd = c.params[p].sd;
        if (sd == 1) {
          for (int64_t d = 0; d < D; ++d) yr[d] += wp * pr[d];
        } else {
          for (int64_t d = 0; d < D; ++d) yr[d] += wp * pr[d * sd];
        }
      }
    }
    if (any_dn) {
      // m = sum_p w_p P_p over the dn params, in chunks so that every param's stream
      // advances together (more reads in flight than one slab after another).
      T* __restrict__ m = mix_dn.data();
      constexpr int64_t kChunk = 512;
      for (int64_t i0 = 0; i0 < N * D; i0 += kChunk) {
        const int64_t i1 = std::min(N * D, i0 + kChunk);
        bool first = true;
        for (size_t p = 0; p < c.params.size(); ++p) {
          if (!c.params[p].dn) continue;
          const T* __restrict__ ps = c.params[p].slab(b);  // [D, N]
          const T wp = c.w_params[p];
          if (first) {
            for (int64_t i = i0; i < i1; ++i) m[i] = wp * ps[i];
          } else {
            for (int64_t i = i0; i < i1; ++i) m[i] += wp * ps[i];
          }
          first = false;
        }
      }
      transpose_slab<T, VB, true>(m, D, N, yb);
    }
  }
}

template <typename T, bool AVG, bool MAX, bool SKIP>
NAS_TARGET_AVX2 void forward_batches_avx2(const Ctx<T>& c, T* y, bool any_dn, int64_t b0,
                                          int64_t b1) {
  forward_batches<T, 32, AVG, MAX, SKIP>(c, y, any_dn, b0, b1);
}

template <typename T, bool AVG, bool MAX, bool SKIP>
void forward_batches_base(const Ctx<T>& c, T* y, bool any_dn, int64_t b0, int64_t b1) {
  forward_batches<T, 16, AVG, MAX, SKIP>(c, y, any_dn, b0, b1);
}

template <typename T, bool AVG, bool MAX, bool SKIP>
void forward_impl(const Ctx<T>& c, T* y) {
  const int64_t B = c.B, N = c.N, D = c.D;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, N * D));
  bool any_dn = false;
  for (const auto& p : c.params) any_dn |= p.dn;
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    if (use_avx2()) {
      forward_batches_avx2<T, AVG, MAX, SKIP>(c, y, any_dn, b0, b1);
    } else {
      forward_batches_base<T, AVG, MAX, SKIP>(c, y, any_dn, b0, b1);
    }
  });
}

// What the backward computes: mixed_op_backward's output_mask, plus whether any param
// is stored as [B, D, N] (dn).
struct Need {
  bool dx, dalpha, dparams, any_dn;
};

// Batch rows [b0, b1): the body of backward_impl's parallel_for, compiled once per ISA.
// DX = need.dx (a template parameter: it removes the dx arithmetic from the row loop).
template <typename T, int VB, bool AVG, bool MAX, bool SKIP, bool DX>
NAS_INLINE void backward_batches(const Ctx<T>& c, const MixedOpPlan& plan, const T* g, T* dx,
                                 const std::vector<T*>& dparams, double* s, const Need& need,
                                 int64_t b0, int64_t b1) {
  const int64_t N = c.N, D = c.D;
  const int K = plan.K;
  const size_t P = c.params.size();
  // Param rows touch memory only for s_k (dalpha) or for d param_outputs.
  const bool params_work = P > 0 && (need.dalpha || need.dparams);
  const bool any_dn = need.any_dn && params_work;
  // Inline rows: dx, or the inline ops' s_k.
  const bool inline_work = DX || (need.dalpha && plan.inline_mask() != 0);
  // Lanes: avg, max, skip, then one per parametric output; float32 for float32.
  std::vector<T> lanes((3 + P) * D);
  std::vector<T> g_dn(any_dn ? N * D : 0);     // [D, N]: g of this batch row, transposed
  std::vector<T> lane_dn(any_dn ? P * N : 0);  // [P, N]
  T* s_avg = lanes.data();
  T* s_max = s_avg + D;
  T* s_skip = s_max + D;
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(lanes.begin(), lanes.end(), T(0));
    const T* xb = c.x + b * N * D;
    const T* gb = g + b * N * D;
    T* dxb = DX ? dx + b * N * D : nullptr;
    for (int64_t n = 0; n < N; ++n) {
      const T* xc = xb + n * D;
      const T* gc = gb + n * D;
      T* dxc = DX ? dxb + n * D : nullptr;
      const RowCoef<T> k = coef(c, n);
      if (any_dn) {
        // Same for the backward's dn phase: the slabs, and their gradients' lines for
        // writing.
        for (size_t p = 0; p < P; ++p) {
          if (!c.params[p].dn) continue;
          if (need.dalpha) prefetch_lines(c.params[p].slab(b) + n * D, D, false);
          if (need.dparams) prefetch_lines(dparams[p] + b * N * D + n * D, D, true);
        }
      }
      if (!inline_work) {
      } else if (N == 1) {
        backward_row<T, VB, false, false, AVG, MAX, SKIP, DX>(xc, xc, xc, gc, nullptr, dxc, nullptr,
                                                              s_avg, s_max, s_skip, D, k);
      } else if (n == 0) {
        backward_row<T, VB, false, true, AVG, MAX, SKIP, DX>(
            xc, xc, xc + D, gc, nullptr, dxc, DX ? dxc + D : nullptr, s_avg, s_max, s_skip, D, k);
      } else if (n + 1 == N) {
        backward_row<T, VB, true, false, AVG, MAX, SKIP, DX>(
            xc - D, xc, xc, gc, DX ? dxc - D : nullptr, dxc, nullptr, s_avg, s_max, s_skip, D, k);
      } else {
        backward_row<T, VB, true, true, AVG, MAX, SKIP, DX>(
            xc - D, xc, xc + D, gc, DX ? dxc - D : nullptr, dxc, DX ? dxc + D : nullptr, s_avg,
            s_max, s_skip, D, k);
      }
      if (!params_work) continue;
      for (size_t p = 0; p < P; ++p) {
        if (c.params[p].dn) continue;
        const T* __restrict__ pr = c.params[p].row(b, n);
        T* __restrict__ sp = s_skip + (1 + p) * D;
        const int64_t sd = c.params[p].sd;
        if (need.dalpha) {
          if (sd == 1) {
            for (int64_t d = 0; d < D; ++d) sp[d] += gc[d] * pr[d];
          } else {
            for (int64_t d = 0; d < D; ++d) sp[d] += gc[d] * pr[d * sd];
          }
        }
        if (need.dparams) {
          T* __restrict__ dp = dparams[p] + b * N * D + n * D;
          const T wp = c.w_params[p];
          for (int64_t d = 0; d < D; ++d) dp[d] = wp * gc[d];
        }
      }
    }
    if (need.dalpha) {
      // Per-row reduction of the lanes in double: the result does not depend on how
      // at::parallel_for chunks B.
      double* sb = s + b * K;
      for (int k = 0; k < K; ++k) sb[k] = 0;
      auto reduce = [&](const T* lane) {
        double t = 0;
        for (int64_t d = 0; d < D; ++d) t += static_cast<double>(lane[d]);
        return t;
      };
      if (AVG) sb[plan.k_avg] = reduce(s_avg);
      if (MAX) sb[plan.k_max] = reduce(s_max);
      if (SKIP) sb[plan.k_skip] = reduce(s_skip);
      for (size_t p = 0; p < P; ++p) {
        if (!c.params[p].dn) sb[plan.k_param[p]] = reduce(s_skip + (1 + p) * D);
      }
    }
    if (any_dn) {
      // dn params and their gradients are [D, N] slabs: work in that layout.
      T* __restrict__ gt = g_dn.data();
      transpose_slab<T, VB, false>(gb, N, D, gt);
      // All dn params advance together along D (one row of each per step): several
      // read and write streams in flight at once, as in the [N, D] row loop.
      std::fill(lane_dn.begin(), lane_dn.end(), T(0));
      for (int64_t d = 0; d < D; ++d) {
        const T* __restrict__ gr = gt + d * N;
        for (size_t p = 0; p < P; ++p) {
          if (!c.params[p].dn) continue;
          if (need.dalpha) {
            const T* __restrict__ pr = c.params[p].slab(b) + d * N;
            T* __restrict__ lane = lane_dn.data() + p * N;
            for (int64_t n = 0; n < N; ++n) lane[n] += gr[n] * pr[n];
          }
          if (need.dparams) {
            T* __restrict__ dr = dparams[p] + b * N * D + d * N;  // [D, N], P's layout
            const T wp = c.w_params[p];
            for (int64_t n = 0; n < N; ++n) dr[n] = wp * gr[n];
          }
        }
      }
      for (size_t p = 0; p < P && need.dalpha; ++p) {
        if (!c.params[p].dn) continue;
        double t = 0;
        for (int64_t n = 0; n < N; ++n) t += static_cast<double>(lane_dn[p * N + n]);
        s[b * K + plan.k_param[p]] = t;
      }
    }
  }
}

template <typename T, bool AVG, bool MAX, bool SKIP, bool DX>
NAS_TARGET_AVX2 void backward_batches_avx2(const Ctx<T>& c, const MixedOpPlan& plan, const T* g,
                                           T* dx, const std::vector<T*>& dparams, double* s,
                                           const Need& need, int64_t b0, int64_t b1) {
  backward_batches<T, 32, AVG, MAX, SKIP, DX>(c, plan, g, dx, dparams, s, need, b0, b1);
}

template <typename T, bool AVG, bool MAX, bool SKIP, bool DX>
void backward_batches_base(const Ctx<T>& c, const MixedOpPlan& plan, const T* g, T* dx,
                           const std::vector<T*>& dparams, double* s, const Need& need, int64_t b0,
                           int64_t b1) {
  backward_batches<T, 16, AVG, MAX, SKIP, DX>(c, plan, g, dx, dparams, s, need, b0, b1);
}

// s: [B, K] per-batch-row sums s_k = <g[b], op_k(x[b])> (double), slots by alpha position.
template <typename T, bool AVG, bool MAX, bool SKIP, bool DX>
void backward_impl(const Ctx<T>& c, const MixedOpPlan& plan, const T* g, T* dx,
                   const std::vector<T*>& dparams, double* s, const Need& need) {
  const int64_t B = c.B, N = c.N, D = c.D;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, N * D));
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    if (use_avx2()) {
      backward_batches_avx2<T, AVG, MAX, SKIP, DX>(c, plan, g, dx, dparams, s, need, b0, b1);
    } else {
      backward_batches_base<T, AVG, MAX, SKIP, DX>(c, plan, g, dx, dparams, s, need, b0, b1);
    }
  });
}

// Calls fn.template operator()<AVG, MAX, SKIP>() for the plan's inline op set.
template <typename F>
void dispatch_inline(int mask, F&& fn) {
  switch (mask) {
    case 0:
      return fn.template operator()<false, false, false>();
    case 1:
      return fn.template operator()<true, false, false>();
    case 2:
      return fn.template operator()<false, true, false>();
    case 3:
      return fn.template operator()<true, true, false>();
    case 4:
      return fn.template operator()<false, false, true>();
    case 5:
      return fn.template operator()<true, false, true>();
    case 6:
      return fn.template operator()<false, true, true>();
    default:
      return fn.template operator()<true, true, true>();
  }
}

template <typename T>
Ctx<T> make_ctx(const at::Tensor& xc, const MixedOpPlan& plan, const std::vector<double>& w,
                at::TensorList param_outputs) {
  Ctx<T> c;
  c.x = xc.const_data_ptr<T>();
  c.B = xc.size(0);
  c.N = xc.size(1);
  c.D = xc.size(2);
  c.w_avg = plan.k_avg >= 0 ? static_cast<T>(w[plan.k_avg]) : T(0);
  c.w_max = plan.k_max >= 0 ? static_cast<T>(w[plan.k_max]) : T(0);
  c.w_skip = plan.k_skip >= 0 ? static_cast<T>(w[plan.k_skip]) : T(0);
  for (int p = 0; p < plan.num_params; ++p) {
    c.params.push_back(strided<T>(param_outputs[p]));
    c.w_params.push_back(static_cast<T>(w[plan.k_param[p]]));
  }
  return c;
}

at::Tensor mixed_op_cpu(const at::Tensor& x,      // [B, N, D]
                        const at::Tensor& alpha,  // [K]
                        c10::IntArrayRef op_codes,
                        at::TensorList param_outputs) {  // each [B, N, D]
  const MixedOpPlan plan = mixed_op_plan(x, alpha, op_codes, param_outputs);
  if (mixed_op_is_half(x))
    return mixed_op_forward_via_float(&mixed_op_cpu, x, alpha, op_codes, param_outputs);
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty(x.sizes(), x.options());  // [B, N, D]
  if (y.numel() == 0) return y;
  const std::vector<double> w = softmax_weights(alpha);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_op_cpu", [&] {
    const Ctx<scalar_t> c = make_ctx<scalar_t>(xc, plan, w, param_outputs);
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    dispatch_inline(plan.inline_mask(), [&]<bool AVG, bool MAX, bool SKIP>() {
      forward_impl<scalar_t, AVG, MAX, SKIP>(c, yp);
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> mixed_op_backward_cpu(
    const at::Tensor& grad,   // [B, N, D]
    const at::Tensor& x,      // [B, N, D]
    const at::Tensor& alpha,  // [K]
    c10::IntArrayRef op_codes,
    at::TensorList param_outputs,  // each [B, N, D]
    MixedOpMask mask) {            // {dx, dalpha, d param_outputs}
  const MixedOpPlan plan = mixed_op_plan(x, alpha, op_codes, param_outputs);
  check_mixed_op_grad(grad, x);
  if (mixed_op_is_half(x)) {
    return mixed_op_backward_via_float(&mixed_op_backward_cpu, grad, x, alpha, op_codes,
                                       param_outputs, mask);
  }
  const Need need{mask[0], mask[1], mask[2] && plan.num_params > 0,
                  std::any_of(param_outputs.begin(), param_outputs.end(),
                              [](const at::Tensor& p) { return mixed_op_dn_layout(p); })};
  const at::Tensor xc = x.contiguous();
  const at::Tensor gc = grad.contiguous();
  const int64_t B = x.size(0), K = plan.K;
  // Gradients not asked for come back empty.
  at::Tensor dx = at::empty(need.dx ? x.sizes() : at::IntArrayRef{0}, x.options());  // [B, N, D]
  std::vector<at::Tensor> dparams =
      mask[2] ? mixed_op_param_grads(param_outputs, x) : std::vector<at::Tensor>{};
  at::Tensor dalpha = at::empty({need.dalpha ? K : 0}, alpha.options());  // [K]
  const std::vector<double> w = softmax_weights(alpha);
  std::vector<double> s(need.dalpha ? static_cast<size_t>(B * K) : 0, 0.0);  // [B, K]
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_op_backward_cpu", [&] {
    if (x.numel() > 0 && (need.dx || need.dalpha || need.dparams)) {
      const Ctx<scalar_t> c = make_ctx<scalar_t>(xc, plan, w, param_outputs);
      std::vector<scalar_t*> dps;
      for (auto& t : dparams) dps.push_back(t.mutable_data_ptr<scalar_t>());
      scalar_t* dxp = need.dx ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      const scalar_t* gp = gc.const_data_ptr<scalar_t>();
      dispatch_inline(plan.inline_mask(), [&]<bool AVG, bool MAX, bool SKIP>() {
        if (need.dx) {
          backward_impl<scalar_t, AVG, MAX, SKIP, true>(c, plan, gp, dxp, dps, s.data(), need);
        } else {
          backward_impl<scalar_t, AVG, MAX, SKIP, false>(c, plan, gp, dxp, dps, s.data(), need);
        }
      });
    }
    if (!need.dalpha) return;
    // dalpha_k = w_k (s_k - sum_j w_j s_j): softmax's adjoint of dL/dw_k = s_k.
    std::vector<double> tot(K, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < K; ++k) tot[k] += s[b * K + k];
    std::vector<double> d(K);
    mixed_op_softmax_adjoint(w.data(), tot.data(), K, d.data());
    scalar_t* da = dalpha.mutable_data_ptr<scalar_t>();
    for (int64_t k = 0; k < K; ++k) da[k] = static_cast<scalar_t>(d[k]);
  });
  return {dx, dalpha, dparams};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) {
  m.impl("mixed_op", &mixed_op_cpu);
  m.impl("mixed_op_backward", &mixed_op_backward_cpu);
}

}  // namespace nas
