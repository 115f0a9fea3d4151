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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._native import has_native, warn_fallback
from ..optypes import OpType
from . import _reference

_NATIVE_DTYPES = (torch.float32, torch.float64)


def _param_grad_like(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The native backward's gradient of param output p (csrc/mixed_op_args.h): p's
    layout when p is a contiguous [B, D, N] tensor viewed as [B, N, D] (a Conv1d output
    transposed back), so autograd and the conv backward need no transposing copy;
    contiguous [B, N, D] otherwise."""
    if not p.is_contiguous() and p.transpose(1, 2).is_contiguous():
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

    x: Tensor[B, N, D] (float32 or float64; any strides).
    alpha: Tensor[K] architecture logits (softmax is taken inside), x's dtype and device.
    ops: the K candidate ops (OpType or name), in alpha order, no duplicates.
    param_outputs: Tensor[B, N, D] outputs of the parametric candidates (conv_3x3,
        conv_5x5, sep_conv_3x3, sep_conv_5x5), in the order they appear in ``ops``.
    Returns Tensor[B, N, D] (contiguous). Differentiable w.r.t. x, alpha and every
    param_output. Raises ValueError naming the argument on bad input.
    """
    codes = _reference.mixed_op_codes(x, alpha, ops, param_outputs)
    if _native_available():
        if x.dtype not in _NATIVE_DTYPES:
            raise ValueError(f"x must be float32 or float64 for nas.ops.mixed_op, got {x.dtype}")
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
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        torch._check(x.dim() == 3, lambda: "x must be a 3-D tensor [B, N, D]")
        return (
            x.new_empty(x.shape),
            alpha.new_empty(alpha.shape),
            [_param_grad_like(p, x) for p in param_outputs],
        )

    def _setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        x, alpha, op_codes, param_outputs = inputs
        ctx.op_codes = list(op_codes)
        ctx.num_params = len(param_outputs)
        ctx.save_for_backward(x, alpha, *param_outputs)

    def _backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN202
        x, alpha, *param_outputs = ctx.saved_tensors
        dx, dalpha, dparams = torch.ops.nas.mixed_op_backward(
            grad, x, alpha, ctx.op_codes, list(param_outputs)
        )
        return dx, dalpha, None, list(dparams)

    torch.library.register_autograd("nas::mixed_op", _backward, setup_context=_setup_context)

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
