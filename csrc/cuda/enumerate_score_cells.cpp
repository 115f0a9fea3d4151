// CUDA registration of nas::enumerate_score_cells (kernel: enumerate_score_cells.cu).
// Compiled, unverified: no GPU has run it yet.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/enumerate_prepare.h"
#include "enumerate_score_cells_checks.h"

namespace nas::enumerate {
namespace {

ScoreCellsOut enumerate_score_cells_cuda(const ScoreCellsArgs& a) {
  c10::cuda::CUDAGuard guard(a.op_features.device());
  Prepared p = prepare_cuda({a.op_features, a.coeffs, a.bias, nullptr, nullptr, a.num_nodes,
                             a.zero_op, a.prune_dead, false, false});
  at::Tensor feats = at::empty({a.count, a.op_features.size(1)}, p.T.options());
  at::Tensor scores = at::empty({a.count}, p.T.options());
  C10_CUDA_CHECK(cuda::enumerate_score_launch(
      p.args, a.start, a.count, nullptr, feats.mutable_data_ptr<double>(),
      scores.mutable_data_ptr<double>(), c10::cuda::getCurrentCUDAStream().stream()));
  return {feats, scores};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) {
  m.impl("enumerate_score_cells", &score_cells_entry<enumerate_score_cells_cuda>);
}

}  // namespace nas::enumerate
