// CUDA kernel of nas::enumerate_score_cells: features and scores of a range of cells,
// or of given indices (the top-k winners). Compiled, unverified: no GPU has run it yet.
#include "cuda/enumerate_scan.cuh"

namespace nas::cuda {
namespace {

using namespace scan;

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

}  // namespace

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

}  // namespace nas::cuda
