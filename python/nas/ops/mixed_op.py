"""``nas.ops.mixed_op``: the fused DARTS mixed op (native op + fake + autograd).

Schema (csrc/ops.cpp)::

    mixed_op(Tensor x, Tensor alpha, int[] op_codes, Tensor[] param_outputs) -> Tensor
    mixed_op_backward(Tensor grad, Tensor x, Tensor alpha, int[] op_codes,
                      Tensor[] param_outputs) -> (Tensor, Tensor, Tensor[])

``op_codes[k]`` is the index of candidate k in ``nas.all_ops()`` (conv_3x3=0, conv_5x5=1,
sep_conv_3x3=2, sep_conv_5x5=3, avg_pool_3x3=4, max_pool_3x3=5, skip_connect=6, zero=7).
The parameter-free candidates are computed inside the kernel from x (never
materialised); the parametric ones arrive as ``param_outputs``, in op order.

Forward: y = sum_k w_k op_k(x), w = softmax(alpha). Backward, with g = dL/dy:
dx = the adjoints of the inline ops (avg: g spread over each window by 1/valid count;
max: g routed to each window's argmax; skip: g), d(param_outputs[p]) = w_p g, and
dalpha_k = w_k (s_k - sum_j w_j s_j) with s_k = <g, op_k(x)> (softmax's adjoint;
equals w_k <g, op_k(x) - y>).

Max ties: a window's argmax is found in order left, centre, right, and a later
element wins only if it is strictly greater or NaN: the first maximum wins, which is
what torch's max_pool1d backward does, so gradients match the reference exactly even
with ties. Accumulation of the s_k is in float32 for float32 tensors (float64 for
float64), per lane and per batch row, summed over rows in float64: deterministic.

Mixed precision: bf16 and fp16 x (and param_outputs) are computed by the float32
kernels (float32 accumulation) and the outputs come back in x's dtype; alpha may be x's
dtype or float32 (dalpha comes back in alpha's dtype). Under ``torch.autocast`` the op
casts x and param_outputs to the autocast dtype (float64 stays float64) and leaves
alpha alone, like autocast's lower-precision ops. The backward computes only the
gradients autograd needs (``ctx.needs_input_grad`` -> mixed_op_backward's output_mask).
Accuracy per dtype: ``TOLERANCES``, below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._native import has_native, warn_fallback
from ..optypes import OpType
from . import _reference

_NATIVE_DTYPES = (torch.float32, torch.float64, *_reference.HALF_DTYPES)


@dataclass(frozen=True)
class Tolerance:
    """How close nas.ops.mixed_op (forward and every gradient) is to the float64
    reference run on the same inputs (half inputs upcast exactly):

    |ours - ref64| <= atol + rtol * |ref64| + lowprec * |ref_lowprec - ref64|

    where ref_lowprec is the reference run in the input dtype (the error PyTorch's own
    ops in that dtype make; flash-attention's rule with factor 2 for half types).
    """

    atol: float
    rtol: float
    lowprec: float = 0.0


# By dtype, as xformers keeps them beside each op. float32 / float64: the kernels sum
# the K terms and the s_k in another order than the reference. bf16 / fp16: float32
# accumulation, one rounding to the output dtype; atol covers float32 rounding where the
# low-precision reference happens to be exact.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(atol=1e-12, rtol=1e-12),
    torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
    torch.bfloat16: Tolerance(atol=1e-5, rtol=0.0, lowprec=2.0),
    torch.float16: Tolerance(atol=1e-5, rtol=0.0, lowprec=2.0),
}


def _autocast_args(
    x: torch.Tensor, alpha: torch.Tensor, param_outputs: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Under torch.autocast on x's device: x and param_outputs in the autocast dtype
    (float64 and non-float tensors untouched), alpha kept (float32 logits are allowed
    with a half-type x; a half alpha with another x dtype goes to float32)."""
    params = list(param_outputs)
    if not isinstance(x, torch.Tensor):
        return x, alpha, params
    dev = x.device.type
    if dev not in ("cpu", "cuda") or not torch.is_autocast_enabled(dev):
        return x, alpha, params
    dt = torch.get_autocast_dtype(dev)

    def cast(t):  # noqa: ANN001, ANN202
        ok = isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64
        return t.to(dt) if ok else t

    x = cast(x)
    params = [cast(p) for p in params]
    if (
        isinstance(alpha, torch.Tensor)
        and x.dtype == dt
        and alpha.dtype in _reference.HALF_DTYPES
        and alpha.dtype != dt
    ):
        alpha = alpha.float()
    return x, alpha, params


def _is_dn(p: torch.Tensor) -> bool:
    """p is stored as a contiguous [B, D, N] tensor viewed as [B, N, D]."""
    return not p.is_contiguous() and p.transpose(1, 2).is_contiguous()


def _stand_in(x: torch.Tensor, dn: bool) -> torch.Tensor:
    """A [B, N, D] tensor with x's dtype and device, [B, D, N]-stored when dn; its
    values are never read (the backward without dalpha reads no param output)."""
    if dn:
        return x.new_empty((x.shape[0], x.shape[2], x.shape[1])).transpose(1, 2)
    return x.new_empty((1, 1, 1)).expand(x.shape)


def _param_grad_like(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The native backward's gradient of param output p (csrc/mixed_op_args.h): p's
    layout when p is a contiguous [B, D, N] tensor viewed as [B, N, D] (a Conv1d output
    transposed back), so autograd and the conv backward need no transposing copy;
    contiguous [B, N, D] otherwise."""
    if _is_dn(p):
        return x.new_empty((x.shape[0], x.shape[2], x.shape[1])).transpose(1, 2)
    return x.new_empty(x.shape)


def _native_available() -> bool:
    return has_native() and hasattr(torch.ops.nas, "mixed_op")


def mixed_op(
    x: torch.Tensor,
    alpha: torch.Tensor,
    ops: Sequence[OpType | str],
    param_outputs: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """The fused DARTS mixed op: sum_k softmax(alpha)_k * op_k(x).

    x: Tensor[B, N, D] (float32, float64, bfloat16 or float16; any strides). Under
        torch.autocast, x and param_outputs are cast to the autocast dtype first.
    alpha: Tensor[K] architecture logits (softmax is taken inside), x's dtype (or
        float32 for a half-type x) and device.
    ops: the K candidate ops (OpType or name), in alpha order, no duplicates.
    param_outputs: Tensor[B, N, D] outputs of the parametric candidates (conv_3x3,
        conv_5x5, sep_conv_3x3, sep_conv_5x5), in the order they appear in ``ops``.
    Returns Tensor[B, N, D] (contiguous). Differentiable w.r.t. x, alpha and every
    param_output. Raises ValueError naming the argument on bad input.
    """
    x, alpha, param_outputs = _autocast_args(x, alpha, param_outputs)
    codes = _reference.mixed_op_codes(x, alpha, ops, param_outputs)
    if _native_available():
        if x.dtype not in _NATIVE_DTYPES:
            raise ValueError(
                "x must be float32, float64, bfloat16 or float16 for nas.ops.mixed_op, "
                f"got {x.dtype}"
            )
        params = list(param_outputs)
        if torch.compiler.is_compiling():
            # The gradient of a [B, D, N]-stored param output keeps that layout. Inductor
            # may hand the saved outputs to the compiled backward in another layout than
            # it traced, so under compile pin them to contiguous [B, N, D] (one copy);
            # eager keeps the copy-free path.
            params = [p.contiguous() for p in params]
        return torch.ops.nas.mixed_op(x, alpha, codes, params)
    warn_fallback("mixed_op")
    return _reference.mixed_op(x, alpha, ops, param_outputs)


if _native_available():

    @torch.library.register_fake("nas::mixed_op")
    def _mixed_op_fake(
        x: torch.Tensor,
        alpha: torch.Tensor,
        op_codes: list[int],
        param_outputs: list[torch.Tensor],
    ) -> torch.Tensor:
        torch._check(x.dim() == 3, lambda: "x must be a 3-D tensor [B, N, D]")
        torch._check(alpha.dim() == 1, lambda: "alpha must be a 1-D tensor [K]")
        torch._check(alpha.shape[0] == len(op_codes), lambda: "alpha length != len(op_codes)")
        return x.new_empty(x.shape)

    @torch.library.register_fake("nas::mixed_op_backward")
    def _mixed_op_backward_fake(
        grad: torch.Tensor,
        x: torch.Tensor,
        alpha: torch.Tensor,
        op_codes: list[int],
        param_outputs: list[torch.Tensor],
        output_mask: list[bool] = (True, True, True),
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        torch._check(x.dim() == 3, lambda: "x must be a 3-D tensor [B, N, D]")
        # A gradient not asked for comes back empty ([0], or [] for the param outputs).
        return (
            x.new_empty(x.shape if output_mask[0] else (0,)),
            alpha.new_empty(alpha.shape if output_mask[1] else (0,)),
            [_param_grad_like(p, x) for p in param_outputs] if output_mask[2] else [],
        )

    def _setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        x, alpha, op_codes, param_outputs = inputs
        ctx.op_codes = list(op_codes)
        ctx.num_params = len(param_outputs)
        # The param outputs are read only for dalpha: keep them alive only then.
        ctx.saved_params = bool(alpha.requires_grad)
        ctx.save_for_backward(x, alpha, *(param_outputs if ctx.saved_params else ()))
        ctx.params_dn = [_is_dn(p) for p in param_outputs]

    def _backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN202
        x, alpha, *param_outputs = ctx.saved_tensors
        need_x, need_alpha, _, need_params = ctx.needs_input_grad
        mask = [bool(need_x), bool(need_alpha), any(need_params)]
        if need_alpha and not ctx.saved_params:
            raise RuntimeError("nas.ops.mixed_op: dalpha needed but alpha did not require grad")
        if not ctx.saved_params:
            # Never read without dalpha: stand-ins of the right shape and layout (the
            # layout of each d param_output), with untouched memory.
            param_outputs = [_stand_in(x, dn) for dn in ctx.params_dn]
        if grad.dtype != x.dtype:
            grad = grad.to(x.dtype)
        dx, dalpha, dparams = torch.ops.nas.mixed_op_backward(
            grad, x, alpha, ctx.op_codes, list(param_outputs), mask
        )
        dparams = list(dparams) if mask[2] else [None] * ctx.num_params
        return dx if mask[0] else None, dalpha if mask[1] else None, None, dparams

    torch.library.register_autograd("nas::mixed_op", _backward, setup_context=_setup_context)

    # torch.autocast on torch.ops.nas.mixed_op itself (the wrapper above casts before
    # validating): cast as _autocast_args does, then run below the autocast key (what
    # torch.library.register_autocast does, with the autocast dtype of the moment and
    # alpha left alone).
    _AUTOCAST_LIB = torch.library.Library("nas", "IMPL")

    def _autocast_kernel(key: str):  # noqa: ANN202
        keys = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key))

        def kernel(x, alpha, op_codes, param_outputs):  # noqa: ANN001, ANN202
            x, alpha, params = _autocast_args(x, alpha, param_outputs)
            with torch._C._ExcludeDispatchKeyGuard(keys):
                return torch.ops.nas.mixed_op(x, alpha, op_codes, params)

        return kernel

    for _key in ("AutocastCPU", "AutocastCUDA"):
        _AUTOCAST_LIB.impl("mixed_op", _autocast_kernel(_key), _key)

    def _no_double_backward(ctx, *grads):  # noqa: ANN001, ANN002, ANN202
        raise RuntimeError(
            "nas.ops.mixed_op does not support double backward (create_graph=True "
            "followed by a second backward through its gradient)"
        )

    # Without this, a second backward would warn and silently treat the backward as
    # constant; DARTS' second-order step uses finite differences and never needs it.
    def _no_context(ctx, inputs, output) -> None:  # noqa: ANN001
        pass

    torch.library.register_autograd(
        "nas::mixed_op_backward", _no_double_backward, setup_context=_no_context
    )
