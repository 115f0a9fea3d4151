#include "cuda/decode_cells.cuh"
#include "decode_cells.h"

namespace nas::cuda {
namespace {

// One thread per cell: the digits of a cell are a serial chain of divisions, and
// num_edges (<= 28 for 8 nodes) is too short to split across threads.
__global__ void decode_cells_kernel(const int64_t* __restrict__ in, int64_t* __restrict__ out,
                                    int64_t n, int64_t num_ops, int64_t num_edges, int64_t size,
                                    int* __restrict__ bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const int64_t v0 = in[i];
    if (v0 < 0 || (size >= 0 && v0 >= size)) {
      *bad = 1;  // benign race: every writer stores the same value
      continue;
    }
    decode_cell(static_cast<uint64_t>(v0), static_cast<uint64_t>(num_ops), num_edges,
                out + i * num_edges);
  }
}

}  // namespace

cudaError_t decode_cells_launch(const int64_t* in, int64_t* out, int64_t n, int64_t num_ops,
                                int64_t num_edges, int64_t size, int* bad, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  decode_cells_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(in, out, n, num_ops,
                                                                             num_edges, size, bad);
  return cudaGetLastError();
}

}  // namespace nas::cuda
