// Launcher for the nas::decode_cells CUDA kernel (raw pointers, no torch headers).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace nas::cuda {

// in: [n] cell indices; out: [n, num_edges] op codes. size = num_ops**num_edges or
// -1 when it overflows int64. Indices out of range set *bad (device int) to 1.
cudaError_t decode_cells_launch(const int64_t* in, int64_t* out, int64_t n, int64_t num_ops,
                                int64_t num_edges, int64_t size, int* bad, cudaStream_t stream);

}  // namespace nas::cuda
