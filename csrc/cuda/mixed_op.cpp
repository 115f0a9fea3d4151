// CUDA registration of nas::mixed_op and nas::mixed_op_backward; the kernels live in
// mixed_op.cu.
#include "cuda/mixed_op.cuh"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "mixed_op_args.h"

namespace nas {
namespace {

cuda::MixedOpParams make_params(at::TensorList param_outputs,
                                const std::vector<at::Tensor>& grads) {
  cuda::MixedOpParams prm;
  for (size_t p = 0; p < param_outputs.size(); ++p) {
    const at::Tensor& t = param_outputs[p];
    prm.p[p] = t.const_data_ptr();
    prm.sb[p] = t.stride(0);
    prm.sn[p] = t.stride(1);
    prm.sd[p] = t.stride(2);
    if (p < grads.size()) {
      prm.dp[p] = grads[p].mutable_data_ptr();
      prm.dsb[p] = grads[p].stride(0);
      prm.dsn[p] = grads[p].stride(1);
      prm.dsd[p] = grads[p].stride(2);
    }
  }
  return prm;
}

at::Tensor mixed_op_cuda(const at::Tensor& x,      // [B, N, D]
                         const at::Tensor& alpha,  // [K]
                         c10::IntArrayRef op_codes,
                         at::TensorList param_outputs) {  // each [B, N, D]
  const MixedOpPlan plan = mixed_op_plan(x, alpha, op_codes, param_outputs);
  if (mixed_op_is_half(x))
    return mixed_op_forward_via_float(&mixed_op_cuda, x, alpha, op_codes, param_outputs);
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor ac = alpha.contiguous();
  at::Tensor y = at::empty(x.sizes(), x.options());  // [B, N, D]
  const cuda::MixedOpParams prm = make_params(param_outputs, {});
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_op_cuda", [&] {
    C10_CUDA_CHECK(cuda::mixed_op_forward_launch<scalar_t>(
        xc.const_data_ptr<scalar_t>(), ac.const_data_ptr<scalar_t>(), plan, prm,
        y.mutable_data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2), stream.stream()));
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> mixed_op_backward_cuda(
    const at::Tensor& grad,   // [B, N, D]
    const at::Tensor& x,      // [B, N, D]
    const at::Tensor& alpha,  // [K]
    c10::IntArrayRef op_codes,
    at::TensorList param_outputs,  // each [B, N, D]
    MixedOpMask mask) {            // {dx, dalpha, d param_outputs}
  const MixedOpPlan plan = mixed_op_plan(x, alpha, op_codes, param_outputs);
  check_mixed_op_grad(grad, x);
  if (mixed_op_is_half(x)) {
    return mixed_op_backward_via_float(&mixed_op_backward_cuda, grad, x, alpha, op_codes,
                                       param_outputs, mask);
  }
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor gc = grad.contiguous();
  const at::Tensor ac = alpha.contiguous();
  // Gradients not asked for come back empty and are not computed (null pointers).
  at::Tensor dx = at::empty(mask[0] ? x.sizes() : at::IntArrayRef{0}, x.options());  // [B, N, D]
  at::Tensor dalpha = at::empty({mask[1] ? plan.K : 0}, alpha.options());            // [K]
  std::vector<at::Tensor> dparams =
      mask[2] ? mixed_op_param_grads(param_outputs, x) : std::vector<at::Tensor>{};
  at::Tensor partials =
      at::empty({cuda::kMixedOpMaxBlocks * kMixedOpMaxK}, x.options().dtype(at::kDouble));
  const cuda::MixedOpParams prm = make_params(param_outputs, dparams);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mixed_op_backward_cuda", [&] {
    C10_CUDA_CHECK(cuda::mixed_op_backward_launch<scalar_t>(
        gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(), ac.const_data_ptr<scalar_t>(),
        plan, prm, mask[0] ? dx.mutable_data_ptr<scalar_t>() : nullptr,
        mask[1] ? dalpha.mutable_data_ptr<scalar_t>() : nullptr,
        partials.mutable_data_ptr<double>(), x.size(0), x.size(1), x.size(2), stream.stream()));
  });
  return {dx, dalpha, dparams};
}

}  // namespace

TORCH_LIBRARY_IMPL(nas, CUDA, m) {
  m.impl("mixed_op", &mixed_op_cuda);
  m.impl("mixed_op_backward", &mixed_op_backward_cuda);
}

}  // namespace nas
