// CUDA registration of nas::decode_cells; the kernel lives in decode_cells.cu.
#include "cuda/decode_cells.cuh"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "decode_cells.h"

namespace nas {
namespace {

at::Tensor decode_cells_cuda(const at::Tensor& indices,  // [n] int64
                             int64_t num_ops, int64_t num_edges) {
  TORCH_CHECK_VALUE(indices.dim() == 1, "indices must be a 1-D tensor [n], got shape ",
                    indices.sizes());
  TORCH_CHECK_VALUE(indices.scalar_type() == at::kLong, "indices must be int64, got ",
                    indices.scalar_type());
  TORCH_CHECK_VALUE(num_ops >= 1, "num_ops must be >= 1, got ", num_ops);
  TORCH_CHECK_VALUE(num_edges >= 0, "num_edges must be >= 0, got ", num_edges);
  c10::cuda::CUDAGuard guard(indices.device());
  const at::Tensor idx = indices.contiguous();
  const int64_t n = idx.numel();
  at::Tensor out = at::empty({n, num_edges}, idx.options());
  at::Tensor bad = at::zeros({1}, idx.options().dtype(at::kInt));
  auto stream = c10::cuda::getCurrentCUDAStream();
  C10_CUDA_CHECK(cuda::decode_cells_launch(
      idx.const_data_ptr<int64_t>(), out.mutable_data_ptr<int64_t>(), n, num_ops, num_edges,
      space_size_or_neg1(num_ops, num_edges), bad.mutable_data_ptr<int>(), stream.stream()));
  // One small sync: out-of-range indices must raise, as on the CPU.
  TORCH_CHECK_VALUE(bad.item<int>() == 0, "a cell index is out of range [0, ", num_ops, "**",
                    num_edges, ")");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) { m.impl("decode_cells", &decode_cells_cuda); }

}  // namespace nas
