// CUDA registration of nas::enumerate_count (kernel: enumerate_count.cu). The
// results stay on the device: no host sync after the entry checks.
// Compiled, unverified: no GPU has run it yet.
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/enumerate_prepare.h"
#include "enumerate_count_checks.h"

namespace nas::enumerate {
namespace {

CountOut enumerate_count_cuda(const CountArgs& a) {
  TORCH_CHECK_VALUE(a.bins <= cuda::kMaxBins, "bins = ", a.bins, " is more than the CUDA limit of ",
                    cuda::kMaxBins);
  c10::cuda::CUDAGuard guard(a.op_features.device());
  Prepared p = prepare_cuda({a.op_features, a.coeffs, a.bias, &a.low, &a.high, a.num_nodes,
                             a.zero_op, a.prune_dead, a.connected_only, a.distinct});
  at::Tensor hist = at::zeros({a.bins + 2}, p.T.options().dtype(at::kLong));
  at::Tensor totals = at::zeros({2}, p.T.options().dtype(at::kLong));
  C10_CUDA_CHECK(cuda::enumerate_count_launch(
      p.args, a.start, a.count, static_cast<int>(a.bins), a.hist_min, a.hist_max,
      reinterpret_cast<unsigned long long*>(hist.mutable_data_ptr<int64_t>()),
      reinterpret_cast<unsigned long long*>(totals.mutable_data_ptr<int64_t>()),
      c10::cuda::getCurrentCUDAStream().stream()));
  return {hist, totals};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) { m.impl("enumerate_count", &count_entry<enumerate_count_cuda>); }

}  // namespace nas::enumerate
