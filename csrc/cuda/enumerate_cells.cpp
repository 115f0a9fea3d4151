// CUDA registration of the nas::enumerate_* ops. Scans (score_cells, top_k, count)
// run on the GPU (csrc/cuda/enumerate_cells.cu); the Pareto front and the
// branch-and-bound search are sequential-merge / depth-first algorithms that run the
// CPU kernels on host copies of the (tiny) tables and return device tensors.
#include "cuda/enumerate_cells.cuh"

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "enumerate_count_checks.h"
#include "enumerate_score_cells_checks.h"
#include "enumerate_top_k_checks.h"

namespace nas::enumerate {
namespace {

struct Prepared {
  at::Tensor T, coeffs, low, high, inner, inner_score;
  cuda::EnumerateArgs args;
};

// After the op's entry checks (enumerate_<op>_checks.h): the CUDA limits, the device
// copies and the inner block.
Prepared prepare_cuda(const at::Tensor& op_features, const at::Tensor& coeffs, double bias,
                      const at::Tensor* low, const at::Tensor* high, int64_t num_nodes,
                      int64_t zero_op, bool prune_dead) {
  const int64_t K = op_features.size(0), F = op_features.size(1);
  TORCH_CHECK_VALUE(F <= cuda::kMaxFeatures, "op_features has ", F,
                    " feature columns; the CUDA kernels take at most ", cuda::kMaxFeatures);
  Prepared p;
  p.T = op_features.contiguous();
  p.coeffs = coeffs.contiguous().to(op_features.device());
  if (low) {
    p.low = low->contiguous().to(op_features.device());
    p.high = high->contiguous().to(op_features.device());
  } else {
    p.low = at::empty({F}, p.T.options()).fill_(-std::numeric_limits<double>::infinity());
    p.high = at::empty({F}, p.T.options()).fill_(std::numeric_limits<double>::infinity());
  }
  const int64_t E = num_nodes * (num_nodes - 1) / 2;
  int64_t M = 1;
  for (int64_t t = 0; t < inner_edges(K, E); ++t) M *= K;
  p.inner = at::empty({F, M}, p.T.options());
  p.inner_score = at::empty({M}, p.T.options());
  const at::Tensor lo_c = p.low.cpu(), hi_c = p.high.cpu();
  int has_cons = 0;
  for (int64_t f = 0; f < F; ++f)
    has_cons |= lo_c.const_data_ptr<double>()[f] != -std::numeric_limits<double>::infinity() ||
                hi_c.const_data_ptr<double>()[f] != std::numeric_limits<double>::infinity();
  p.args = cuda::EnumerateArgs{p.T.const_data_ptr<double>(),
                               p.coeffs.const_data_ptr<double>(),
                               bias,
                               static_cast<int>(K),
                               static_cast<int>(F),
                               static_cast<int>(num_nodes),
                               static_cast<int>(zero_op),
                               prune_dead && zero_op >= 0,
                               p.low.const_data_ptr<double>(),
                               p.high.const_data_ptr<double>(),
                               has_cons,
                               p.inner.mutable_data_ptr<double>(),
                               p.inner_score.mutable_data_ptr<double>()};
  C10_CUDA_CHECK(
      cuda::enumerate_prepare_launch(p.args, c10::cuda::getCurrentCUDAStream().stream()));
  return p;
}

std::tuple<at::Tensor, at::Tensor> enumerate_score_cells_cuda(
    const at::Tensor& op_features,  // [num_ops, F] float64
    const at::Tensor& coeffs,       // [F] float64
    double bias, int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start,
    int64_t count) {
  check_score_cells_args(op_features, coeffs, bias, num_nodes, zero_op, start, count);
  c10::cuda::CUDAGuard guard(op_features.device());
  Prepared p =
      prepare_cuda(op_features, coeffs, bias, nullptr, nullptr, num_nodes, zero_op, prune_dead);
  at::Tensor feats = at::empty({count, op_features.size(1)}, p.T.options());
  at::Tensor scores = at::empty({count}, p.T.options());
  C10_CUDA_CHECK(cuda::enumerate_score_launch(
      p.args, start, count, nullptr, feats.mutable_data_ptr<double>(),
      scores.mutable_data_ptr<double>(), c10::cuda::getCurrentCUDAStream().stream()));
  return {feats, scores};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_top_k_cuda(
    const at::Tensor& op_features, const at::Tensor& coeffs, double bias, const at::Tensor& low,
    const at::Tensor& high, int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start,
    int64_t count, int64_t k, bool largest) {
  check_top_k_args(op_features, coeffs, bias, low, high, num_nodes, zero_op, start, count, k);
  TORCH_CHECK_VALUE(k <= cuda::kMaxK, "k = ", k, " is more than the CUDA kernel's limit of ",
                    cuda::kMaxK, "; scan on the CPU or in chunks");
  c10::cuda::CUDAGuard guard(op_features.device());
  Prepared p = prepare_cuda(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, prune_dead);
  const int blocks = cuda::enumerate_top_k_blocks(count);
  at::Tensor bidx = at::empty({blocks, k}, p.T.options().dtype(at::kLong));
  at::Tensor bsc = at::empty({blocks, k}, p.T.options());
  at::Tensor bn = at::zeros({blocks}, p.T.options().dtype(at::kInt));
  auto stream = c10::cuda::getCurrentCUDAStream().stream();
  C10_CUDA_CHECK(cuda::enumerate_top_k_launch(
      p.args, start, count, static_cast<int>(k), largest, blocks, bidx.mutable_data_ptr<int64_t>(),
      bsc.mutable_data_ptr<double>(), bn.mutable_data_ptr<int>(), stream));
  // Merge the blocks' lists on the host: at most blocks * k entries, same total order
  // as the CPU (score, then lower index).
  const at::Tensor hi = bidx.cpu(), hs = bsc.cpu(), hn = bn.cpu();
  std::vector<std::pair<double, int64_t>> all;
  for (int b = 0; b < blocks; ++b)
    for (int r = 0; r < hn.const_data_ptr<int>()[b]; ++r)
      all.emplace_back(hs.const_data_ptr<double>()[b * k + r],
                       hi.const_data_ptr<int64_t>()[b * k + r]);
  std::sort(all.begin(), all.end(), [largest](const auto& x, const auto& y) {
    if (largest ? x.first > y.first : x.first < y.first) return true;
    return x.first == y.first && x.second < y.second;
  });
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
  at::Tensor idx_h = at::empty({n}, at::TensorOptions().dtype(at::kLong));
  for (int64_t r = 0; r < n; ++r) idx_h.mutable_data_ptr<int64_t>()[r] = all[r].second;
  at::Tensor idx = idx_h.to(op_features.device());
  at::Tensor feats = at::empty({n, op_features.size(1)}, p.T.options());
  at::Tensor scores = at::empty({n}, p.T.options());
  C10_CUDA_CHECK(cuda::enumerate_score_launch(p.args, 0, n, idx.const_data_ptr<int64_t>(),
                                              feats.mutable_data_ptr<double>(),
                                              scores.mutable_data_ptr<double>(), stream));
  return {idx, scores, feats};
}

std::tuple<at::Tensor, at::Tensor> enumerate_count_cuda(
    const at::Tensor& op_features, const at::Tensor& coeffs, double bias, const at::Tensor& low,
    const at::Tensor& high, int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start,
    int64_t count, int64_t bins, double hist_min, double hist_max) {
  check_count_args(op_features, coeffs, bias, low, high, num_nodes, zero_op, start, count, bins,
                   hist_min, hist_max);
  TORCH_CHECK_VALUE(bins <= cuda::kMaxBins, "bins = ", bins, " is more than the CUDA limit of ",
                    cuda::kMaxBins);
  c10::cuda::CUDAGuard guard(op_features.device());
  Prepared p = prepare_cuda(op_features, coeffs, bias, &low, &high, num_nodes, zero_op, prune_dead);
  at::Tensor hist = at::zeros({bins + 2}, p.T.options().dtype(at::kLong));
  at::Tensor totals = at::zeros({2}, p.T.options().dtype(at::kLong));
  C10_CUDA_CHECK(cuda::enumerate_count_launch(
      p.args, start, count, static_cast<int>(bins), hist_min, hist_max,
      reinterpret_cast<unsigned long long*>(hist.mutable_data_ptr<int64_t>()),
      reinterpret_cast<unsigned long long*>(totals.mutable_data_ptr<int64_t>()),
      c10::cuda::getCurrentCUDAStream().stream()));
  return {hist, totals};
}

// The host algorithms: run the CPU kernel on CPU copies, return device tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_pareto_cuda(
    const at::Tensor& op_features, const at::Tensor& objectives, const at::Tensor& low,
    const at::Tensor& high, int64_t num_nodes, int64_t zero_op, bool prune_dead, int64_t start,
    int64_t count) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("nas::enumerate_pareto", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, int64_t, int64_t, bool, int64_t, int64_t)>();
  auto [i, v, n] = op.call(op_features.cpu(), objectives.cpu(), low.cpu(), high.cpu(), num_nodes,
                           zero_op, prune_dead, start, count);
  const auto d = op_features.device();
  return {i.to(d), v.to(d), n.to(d)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> enumerate_search_top_k_cuda(
    const at::Tensor& op_features, const at::Tensor& coeffs, double bias, const at::Tensor& low,
    const at::Tensor& high, int64_t num_nodes, int64_t k, bool largest, int64_t max_nodes) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("nas::enumerate_search_top_k", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, double, const at::Tensor&,
                           const at::Tensor&, int64_t, int64_t, bool, int64_t)>();
  auto [c, s, f] = op.call(op_features.cpu(), coeffs.cpu(), bias, low.cpu(), high.cpu(), num_nodes,
                           k, largest, max_nodes);
  const auto d = op_features.device();
  return {c.to(d), s.to(d), f.to(d)};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) {
  m.impl("enumerate_score_cells", &enumerate_score_cells_cuda);
  m.impl("enumerate_top_k", &enumerate_top_k_cuda);
  m.impl("enumerate_count", &enumerate_count_cuda);
  m.impl("enumerate_pareto", &enumerate_pareto_cuda);
  m.impl("enumerate_search_top_k", &enumerate_search_top_k_cuda);
}

}  // namespace nas::enumerate
