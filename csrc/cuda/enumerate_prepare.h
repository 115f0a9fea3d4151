// Host side shared by the CUDA registrations of the nas::enumerate_* scans
// (csrc/cuda/enumerate_<op>.cpp), after the op's entry checks (enumerate_<op>_checks.h):
// the CUDA limits, the device copies of the tables and the inner block.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include <limits>
#include <tuple>

#include "cuda/enumerate_scan.cuh"
#include "enumerate_cells.h"

namespace nas::enumerate {

struct Prepared {
  at::Tensor T, coeffs, low, high, inner, inner_score, inner_nz;
  cuda::EnumerateArgs args;
};

struct PrepareArgs {
  const at::Tensor& op_features;  // [num_ops, F] float64, on the op's device
  const at::Tensor& coeffs;       // [F] float64
  double bias;
  const at::Tensor* low;   // [F] float64 or null (no bounds)
  const at::Tensor* high;  // [F] float64 or null
  int64_t num_nodes, zero_op;
  bool prune_dead, connected_only, distinct;
};

inline Prepared prepare_cuda(const PrepareArgs& a) {
  const int64_t K = a.op_features.size(0), F = a.op_features.size(1);
  TORCH_CHECK_VALUE(F <= cuda::kMaxFeatures, "op_features has ", F,
                    " feature columns; the CUDA kernels take at most ", cuda::kMaxFeatures);
  Prepared p;
  p.T = a.op_features.contiguous();
  const auto dev = p.T.device();
  p.coeffs = a.coeffs.contiguous().to(dev);
  int has_cons = 0;
  if (a.low) {
    // One host read of both bounds (a sync; the entry checks read them already).
    const at::Tensor lo_c = a.low->cpu(), hi_c = a.high->cpu();
    for (int64_t f = 0; f < F; ++f)
      has_cons |= lo_c.const_data_ptr<double>()[f] != -std::numeric_limits<double>::infinity() ||
                  hi_c.const_data_ptr<double>()[f] != std::numeric_limits<double>::infinity();
    p.low = a.low->contiguous().to(dev);
    p.high = a.high->contiguous().to(dev);
  } else {
    p.low = at::empty({F}, p.T.options()).fill_(-std::numeric_limits<double>::infinity());
    p.high = at::empty({F}, p.T.options()).fill_(std::numeric_limits<double>::infinity());
  }
  const int64_t E = a.num_nodes * (a.num_nodes - 1) / 2;
  int64_t M = 1;
  for (int64_t t = 0; t < inner_edges(K, E); ++t) M *= K;
  p.inner = at::empty({F, M}, p.T.options());
  p.inner_score = at::empty({M}, p.T.options());
  p.inner_nz = at::empty({M}, p.T.options().dtype(at::kInt));
  const bool has_zero = a.zero_op >= 0;
  p.args = cuda::EnumerateArgs{p.T.const_data_ptr<double>(),
                               p.coeffs.const_data_ptr<double>(),
                               a.bias,
                               static_cast<int>(K),
                               static_cast<int>(F),
                               static_cast<int>(a.num_nodes),
                               static_cast<int>(a.zero_op),
                               a.prune_dead && has_zero,
                               a.connected_only,
                               a.distinct,
                               (a.connected_only || a.distinct) && has_zero,
                               p.low.const_data_ptr<double>(),
                               p.high.const_data_ptr<double>(),
                               has_cons,
                               p.inner.mutable_data_ptr<double>(),
                               p.inner_score.mutable_data_ptr<double>(),
                               reinterpret_cast<uint32_t*>(p.inner_nz.mutable_data_ptr<int>())};
  C10_CUDA_CHECK(
      cuda::enumerate_prepare_launch(p.args, c10::cuda::getCurrentCUDAStream().stream()));
  return p;
}

// The outputs of a CPU kernel run on host copies (pareto, search_top_k), on `device`.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> to_device(
    const std::tuple<at::Tensor, at::Tensor, at::Tensor>& out, const at::Device& device) {
  return {std::get<0>(out).to(device), std::get<1>(out).to(device), std::get<2>(out).to(device)};
}

}  // namespace nas::enumerate
