// CUDA registration of nas::enumerate_pareto: the front is a sequential merge, so it
// runs the CPU kernel (csrc/cpu/enumerate_pareto.cpp) on host copies of the tiny
// tables and returns device tensors. Compiled, unverified: no GPU has run it yet.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/enumerate_prepare.h"
#include "enumerate_pareto_checks.h"

namespace nas::enumerate {
namespace {

ParetoOut enumerate_pareto_cuda(const ParetoArgs& a) {
  c10::cuda::CUDAGuard guard(a.op_features.device());
  const at::Tensor T = a.op_features.cpu(), O = a.objectives.cpu(), lo = a.low.cpu(),
                   hi = a.high.cpu();
  return to_device(cpu::enumerate_pareto_run({T, O, lo, hi, a.num_nodes, a.zero_op, a.prune_dead,
                                              a.start, a.count, a.connected_only, a.distinct}),
                   a.op_features.device());
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) {
  m.impl("enumerate_pareto", &pareto_entry<enumerate_pareto_cuda>);
}

}  // namespace nas::enumerate
