// CUDA registration of nas::enumerate_search_top_k: branch and bound is depth-first,
// so it runs the CPU kernel (csrc/cpu/enumerate_search_top_k.cpp) on host copies of
// the tiny tables and returns device tensors. Compiled, unverified: no GPU has run it.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/enumerate_prepare.h"
#include "enumerate_search_top_k_checks.h"

namespace nas::enumerate {
namespace {

SearchTopKOut enumerate_search_top_k_cuda(const SearchTopKArgs& a) {
  c10::cuda::CUDAGuard guard(a.op_features.device());
  const at::Tensor T = a.op_features.cpu(), c = a.coeffs.cpu(), lo = a.low.cpu(), hi = a.high.cpu();
  const BoundedScanArgs host{T, c, a.bias, lo, hi, a.num_nodes, a.zero_op, false, 0, 0};
  return to_device(cpu::enumerate_search_top_k_run(
                       {host, a.k, a.largest, a.max_nodes, a.connected_only, a.distinct}),
                   a.op_features.device());
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) {
  m.impl("enumerate_search_top_k", &search_top_k_entry<enumerate_search_top_k_cuda>);
}

}  // namespace nas::enumerate
