// CUDA registration of nas::enumerate_top_k (kernel: enumerate_top_k.cu).
// Compiled, unverified: no GPU has run it yet.
//
// Host syncs of a call: the entry checks read the tiny tables on the host (shared with
// the CPU kernel: NaN and bound checks need their values), prepare_cuda reads the
// bounds once, and the result needs two: one device-to-host copy of every block's
// list (packed into one buffer: its size on the host decides the output's) and one
// host-to-device copy of the merged winners' indices, whose features the device
// recomputes. The kernel launches themselves never wait.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cuda/enumerate_prepare.h"
#include "enumerate_top_k_checks.h"

namespace nas::enumerate {
namespace {

TopKOut enumerate_top_k_cuda(const TopKArgs& a) {
  TORCH_CHECK_VALUE(a.k <= cuda::kMaxK, "k = ", a.k, " is more than the CUDA kernel's limit of ",
                    cuda::kMaxK, "; scan on the CPU or in chunks");
  c10::cuda::CUDAGuard guard(a.op_features.device());
  Prepared p = prepare_cuda({a.op_features, a.coeffs, a.bias, &a.low, &a.high, a.num_nodes,
                             a.zero_op, a.prune_dead, a.connected_only, a.distinct});
  const int64_t k = a.k;
  const int blocks = cuda::enumerate_top_k_blocks(a.count);
  // One int64 buffer: indices [blocks, k], scores [blocks, k] (float64 bits), counts
  // [blocks], so the host reads the blocks' lists in one copy.
  at::Tensor buf = at::empty({2 * blocks * k + blocks}, p.T.options().dtype(at::kLong));
  int64_t* d = buf.mutable_data_ptr<int64_t>();
  if (a.count == 0) buf.fill_(0);
  auto stream = c10::cuda::getCurrentCUDAStream().stream();
  C10_CUDA_CHECK(cuda::enumerate_top_k_launch(
      p.args, a.start, a.count, static_cast<int>(k), a.largest, blocks, d,
      reinterpret_cast<double*>(d + blocks * k), d + 2 * blocks * k, stream));
  // Merge the blocks' lists on the host: at most blocks * k entries, same total order
  // as the CPU (score, then lower index).
  const at::Tensor h = buf.cpu();
  const int64_t* hb = h.const_data_ptr<int64_t>();
  std::vector<std::pair<double, int64_t>> all;
  for (int b = 0; b < blocks; ++b)
    for (int64_t r = 0; r < hb[2 * blocks * k + b]; ++r) {
      double s;
      std::memcpy(&s, hb + blocks * k + b * k + r, sizeof s);
      all.emplace_back(s, hb[b * k + r]);
    }
  const bool largest = a.largest;
  std::sort(all.begin(), all.end(), [largest](const auto& x, const auto& y) {
    if (largest ? x.first > y.first : x.first < y.first) return true;
    return x.first == y.first && x.second < y.second;
  });
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
  at::Tensor idx_h = at::empty({n}, at::TensorOptions().dtype(at::kLong));
  for (int64_t r = 0; r < n; ++r) idx_h.mutable_data_ptr<int64_t>()[r] = all[r].second;
  at::Tensor idx = idx_h.to(a.op_features.device());
  at::Tensor feats = at::empty({n, a.op_features.size(1)}, p.T.options());
  at::Tensor scores = at::empty({n}, p.T.options());
  C10_CUDA_CHECK(cuda::enumerate_score_launch(p.args, 0, n, idx.const_data_ptr<int64_t>(),
                                              feats.mutable_data_ptr<double>(),
                                              scores.mutable_data_ptr<double>(), stream));
  return {idx, scores, feats};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) { m.impl("enumerate_top_k", &top_k_entry<enumerate_top_k_cuda>); }

}  // namespace nas::enumerate
