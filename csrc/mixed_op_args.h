// Argument checks of nas::mixed_op / mixed_op_backward, shared by the CPU and CUDA
// registrations (ValueError in Python, naming the argument).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/ArrayRef.h>

#include <array>
#include <tuple>
#include <vector>

#include "mixed_op.h"

namespace nas {

// A parametric output stored as a contiguous [B, D, N] tensor viewed as [B, N, D]
// (what Conv1d(...).transpose(1, 2) returns). Its gradient gets the same layout, so
// neither autograd's accumulation nor the conv's backward has to transpose it.
inline bool mixed_op_dn_layout(const at::Tensor& t) {
  return !t.is_contiguous() && t.transpose(1, 2).is_contiguous();
}

// The gradients of the param outputs (uninitialised), each [B, N, D]: p's layout when
// mixed_op_dn_layout(p), else contiguous. python/nas/ops/mixed_op.py's fake makes the
// same choice.
inline std::vector<at::Tensor> mixed_op_param_grads(at::TensorList param_outputs,
                                                    const at::Tensor& x) {  // [B, N, D]
  std::vector<at::Tensor> grads;
  grads.reserve(param_outputs.size());
  for (const at::Tensor& p : param_outputs) {
    grads.push_back(mixed_op_dn_layout(p)
                        ? at::empty({x.size(0), x.size(2), x.size(1)}, x.options()).transpose(1, 2)
                        : at::empty(x.sizes(), x.options()));
  }
  return grads;
}

// bf16 / fp16: computed by the float32 kernels (float32 accumulation), outputs in
// the input dtype.
inline bool mixed_op_is_half(const at::Tensor& x) {
  return x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf;
}

inline MixedOpPlan mixed_op_plan(const at::Tensor& x,      // [B, N, D]
                                 const at::Tensor& alpha,  // [K]
                                 c10::IntArrayRef op_codes, at::TensorList param_outputs) {
  TORCH_CHECK_VALUE(x.dim() == 3, "x must be a 3-D tensor [B, N, D], got shape ", x.sizes());
  TORCH_CHECK_VALUE(
      x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || mixed_op_is_half(x),
      "x must be float32, float64, bfloat16 or float16, got ", x.scalar_type());
  TORCH_CHECK_VALUE(alpha.dim() == 1, "alpha must be a 1-D tensor [K] of logits, got shape ",
                    alpha.sizes());
  // Half-type x may keep float32 logits (what autocast leaves an nn.Parameter as).
  const bool alpha_dtype_ok = alpha.scalar_type() == x.scalar_type() ||
                              (mixed_op_is_half(x) && alpha.scalar_type() == at::kFloat);
  TORCH_CHECK_VALUE(alpha_dtype_ok && alpha.device() == x.device(),
                    "alpha must have x's dtype (or float32 for a bfloat16/float16 x) and device (",
                    x.scalar_type(), ", ", x.device(), "), got (", alpha.scalar_type(), ", ",
                    alpha.device(), ")");
  const int64_t K = static_cast<int64_t>(op_codes.size());
  TORCH_CHECK_VALUE(K >= 1, "op_codes must name at least one candidate op, got []");
  TORCH_CHECK_VALUE(alpha.size(0) == K, "alpha length ", alpha.size(0),
                    " does not match len(op_codes) = ", K);
  MixedOpPlan plan;
  plan.K = static_cast<int>(K);
  bool seen[kNumMixedOpCodes] = {};
  for (int64_t k = 0; k < K; ++k) {
    const int64_t c = op_codes[k];
    TORCH_CHECK_VALUE(c >= 0 && c < kNumMixedOpCodes, "op_codes[", k, "] = ", c,
                      " is not an op code in [0, ", static_cast<int64_t>(kNumMixedOpCodes), ")");
    TORCH_CHECK_VALUE(!seen[c], "op_codes has duplicate op code ", c, " at position ", k);
    seen[c] = true;
    switch (c) {
      case kAvgPool3x3:
        plan.k_avg = static_cast<int>(k);
        break;
      case kMaxPool3x3:
        plan.k_max = static_cast<int>(k);
        break;
      case kSkipConnect:
        plan.k_skip = static_cast<int>(k);
        break;
      case kZero:
        plan.k_zero = static_cast<int>(k);
        break;
      default:
        plan.k_param[plan.num_params++] = static_cast<int>(k);
        break;
    }
  }
  TORCH_CHECK_VALUE(static_cast<int64_t>(param_outputs.size()) == plan.num_params,
                    "param_outputs has ", param_outputs.size(), " tensor(s) but op_codes has ",
                    plan.num_params, " parametric op(s)");
  for (size_t p = 0; p < param_outputs.size(); ++p) {
    const at::Tensor& t = param_outputs[p];
    TORCH_CHECK_VALUE(t.sizes() == x.sizes(), "param_outputs[", p, "] shape ", t.sizes(),
                      " does not match x shape ", x.sizes());
    TORCH_CHECK_VALUE(t.scalar_type() == x.scalar_type() && t.device() == x.device(),
                      "param_outputs[", p, "] must have x's dtype and device (", x.scalar_type(),
                      ", ", x.device(), "), got (", t.scalar_type(), ", ", t.device(), ")");
  }
  return plan;
}

// The backward's incoming gradient must match x (shared by the CPU and CUDA backward).
inline void check_mixed_op_grad(const at::Tensor& grad,  // [B, N, D]
                                const at::Tensor& x) {   // [B, N, D]
  TORCH_CHECK_VALUE(grad.sizes() == x.sizes(), "grad shape ", grad.sizes(),
                    " does not match x shape ", x.sizes());
  TORCH_CHECK_VALUE(grad.scalar_type() == x.scalar_type() && grad.device() == x.device(),
                    "grad must have x's dtype and device (", x.scalar_type(), ", ", x.device(),
                    "), got (", grad.scalar_type(), ", ", grad.device(), ")");
}

// Which gradients mixed_op_backward computes: {dx, dalpha, d param_outputs}. One not
// asked for comes back empty ([0], or [] for the param outputs) and costs nothing.
using MixedOpMask = std::array<bool, 3>;

// bf16 / fp16 through the float32 kernel `fwd` of the same device: inputs converted to
// float32 (conv-layout params keep their layout: .to() preserves strides), y back to
// x's dtype.
template <typename Fwd>
at::Tensor mixed_op_forward_via_float(Fwd fwd, const at::Tensor& x,  // [B, N, D]
                                      const at::Tensor& alpha,       // [K]
                                      c10::IntArrayRef op_codes, at::TensorList param_outputs) {
  std::vector<at::Tensor> pf;
  for (const at::Tensor& p : param_outputs) pf.push_back(p.to(at::kFloat));
  return fwd(x.to(at::kFloat), alpha.to(at::kFloat), op_codes, pf).to(x.scalar_type());
}

template <typename Bwd>
std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> mixed_op_backward_via_float(
    Bwd bwd, const at::Tensor& grad,  // [B, N, D]
    const at::Tensor& x,              // [B, N, D]
    const at::Tensor& alpha,          // [K]
    c10::IntArrayRef op_codes, at::TensorList param_outputs, MixedOpMask mask) {
  std::vector<at::Tensor> pf;
  for (const at::Tensor& p : param_outputs) pf.push_back(p.to(at::kFloat));
  auto [dx, dalpha, dparams] =
      bwd(grad.to(at::kFloat), x.to(at::kFloat), alpha.to(at::kFloat), op_codes, pf, mask);
  for (at::Tensor& t : dparams) t = t.to(x.scalar_type());
  return {dx.to(x.scalar_type()), dalpha.to(alpha.scalar_type()), dparams};
}

}  // namespace nas
