// The inner block every nas::enumerate_* CUDA scan starts from (enumerate_scan.cuh):
// per inner cell j, its feature sums, its score part and its zero pattern.
// Compiled, unverified: no GPU has run it yet.
#include "cuda/enumerate_scan.cuh"

namespace nas::cuda {
namespace {

using namespace scan;

__global__ void prepare_kernel(EnumerateArgs a, Geo g) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= g.M) return;
  int32_t code[enumerate::kInnerEdgesMax];
  decode_digits(j, a.K, g.m, code);
  uint32_t nz = 0;
  for (int t = 0; t < g.m; ++t)
    if (code[t] != a.zero_op) nz |= 1u << t;
  a.inner_nz[j] = nz;
  double x[kMaxFeatures], unused[kMaxFeatures];
  // The inner block alone: its edges are the "outer" edges of a cell with m = 0.
  cell_sums(a.T, a.K, a.F, code, g.m, 0, 0, ~uint64_t{0}, x, unused);
  for (int f = 0; f < a.F; ++f) a.inner[f * g.M + j] = x[f];
  a.inner_score[j] = dot_rn(a.coeffs, x, a.F, 0.0);
}

}  // namespace

cudaError_t enumerate_prepare_launch(const EnumerateArgs& a, cudaStream_t stream) {
  const Geo g = make_geo(a);
  const int64_t blocks = (g.M + kThreads - 1) / kThreads;
  prepare_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, g);
  return cudaGetLastError();
}

}  // namespace nas::cuda
