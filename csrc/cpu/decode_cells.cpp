#include "decode_cells.h"

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

namespace nas {
namespace {

at::Tensor decode_cells_cpu(const at::Tensor& indices,  // [n] int64
                            int64_t num_ops, int64_t num_edges) {
  TORCH_CHECK_VALUE(indices.dim() == 1, "indices must be a 1-D tensor [n], got shape ",
                    indices.sizes());
  TORCH_CHECK_VALUE(indices.scalar_type() == at::kLong, "indices must be int64, got ",
                    indices.scalar_type());
  TORCH_CHECK_VALUE(num_ops >= 1, "num_ops must be >= 1, got ", num_ops);
  TORCH_CHECK_VALUE(num_edges >= 0, "num_edges must be >= 0, got ", num_edges);
  const int64_t size = space_size_or_neg1(num_ops, num_edges);
  const at::Tensor idx = indices.contiguous();
  const int64_t n = idx.numel();
  at::Tensor out = at::empty({n, num_edges}, idx.options());  // [n, num_edges]
  const int64_t* in_p = idx.const_data_ptr<int64_t>();
  int64_t* out_p = out.mutable_data_ptr<int64_t>();

  // Validate first (a serial pass is cheap next to the decode) so a bad index
  // raises before anything is written and the message names it.
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = in_p[i];
    TORCH_CHECK_VALUE(v >= 0 && (size < 0 || v < size), "cell index ", v, " at position ", i,
                      " is out of range [0, ", num_ops, "**", num_edges, ")");
  }
  at::parallel_for(0, n, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      decode_cell(static_cast<uint64_t>(in_p[i]), static_cast<uint64_t>(num_ops), num_edges,
                  out_p + i * num_edges);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CPU, m) { m.impl("decode_cells", &decode_cells_cpu); }

}  // namespace nas
