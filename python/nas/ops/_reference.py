"""Pure-PyTorch references of every native op: the spec.

Tests compare the kernels against these, benchmarks time against them, and they are
the fallback when ``nas._C`` is missing. Clear and vectorised, never fast tricks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def space_size(num_ops: int, num_edges: int) -> int:
    """num_ops ** num_edges as an exact Python int."""
    return int(num_ops) ** int(num_edges)


def decode_cells(indices: torch.Tensor, num_ops: int, num_edges: int) -> torch.Tensor:
    """indices: Tensor[n] int64 -> Tensor[n, num_edges] int64 op codes.

    The mixed-radix digits of each index in base ``num_ops``, last edge fastest.
    """
    if indices.dim() != 1:
        raise ValueError(f"indices must be a 1-D tensor [n], got shape {tuple(indices.shape)}")
    if indices.dtype != torch.int64:
        raise ValueError(f"indices must be int64, got {indices.dtype}")
    if num_ops < 1:
        raise ValueError(f"num_ops must be >= 1, got {num_ops}")
    if num_edges < 0:
        raise ValueError(f"num_edges must be >= 0, got {num_edges}")
    size = space_size(num_ops, num_edges)
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"cell index {bad} is out of range [0, {num_ops}**{num_edges})")
    out = torch.empty((indices.numel(), num_edges), dtype=torch.int64, device=indices.device)
    v = indices.clone()
    for e in range(num_edges - 1, -1, -1):
        out[:, e] = v % num_ops
        v = v // num_ops
    return out


# Parametric op codes (index in nas.all_ops()): their outputs come from ATen modules
# and are passed in; every other op is computed from x (see nas.signal_ops).
_MIXED_INLINE = ("avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero")


def mixed_op_codes(
    x: torch.Tensor,
    alpha: torch.Tensor,
    ops: Sequence[object],
    param_outputs: Sequence[torch.Tensor],
) -> list[int]:
    """Validate mixed_op's arguments; return the op codes (index in nas.all_ops()).

    Shared by the reference and the native wrapper so both reject the same inputs
    with the same messages (ValueError naming the argument and the value).
    """
    from ..space import all_ops, as_op

    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 3-D tensor [B, N, D], got shape {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    if isinstance(ops, str):
        raise ValueError(f"ops must be a sequence of op names, got the string {ops!r}")
    ops = list(ops)
    if not ops:
        raise ValueError("ops must name at least one candidate op, got []")
    order = all_ops()
    codes: list[int] = []
    for i, op in enumerate(ops):
        try:
            t = as_op(op)
        except ValueError as exc:
            raise ValueError(f"ops[{i}]: {exc}") from None
        code = order.index(t)
        if code in codes:
            raise ValueError(
                f"ops has duplicate op {t.value!r} at positions {codes.index(code)} and {i}"
            )
        codes.append(code)
    if not isinstance(alpha, torch.Tensor) or alpha.dim() != 1:
        shape = tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha).__name__
        raise ValueError(f"alpha must be a 1-D tensor [K] of logits, got shape {shape}")
    if alpha.shape[0] != len(codes):
        raise ValueError(f"alpha length {alpha.shape[0]} does not match len(ops) = {len(codes)}")
    if alpha.dtype != x.dtype or alpha.device != x.device:
        raise ValueError(
            f"alpha must have x's dtype and device ({x.dtype}, {x.device}), "
            f"got ({alpha.dtype}, {alpha.device})"
        )
    parametric = [order[c].value for c in codes if order[c].value not in _MIXED_INLINE]
    param_outputs = list(param_outputs)
    if len(param_outputs) != len(parametric):
        raise ValueError(
            f"param_outputs has {len(param_outputs)} tensor(s) but ops has "
            f"{len(parametric)} parametric op(s) ({', '.join(parametric) or 'none'})"
        )
    for p, out in enumerate(param_outputs):
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"param_outputs[{p}] ({parametric[p]}) shape {shape} does not match "
                f"x shape {tuple(x.shape)}"
            )
        if out.dtype != x.dtype or out.device != x.device:
            raise ValueError(
                f"param_outputs[{p}] ({parametric[p]}) must have x's dtype and device "
                f"({x.dtype}, {x.device}), got ({out.dtype}, {out.device})"
            )
    return codes


def mixed_op(
    x: torch.Tensor,
    alpha: torch.Tensor,
    ops: Sequence[object],
    param_outputs: Sequence[torch.Tensor],
) -> torch.Tensor:
    """The DARTS mixed op, as quark0/darts computes it: sum_k softmax(alpha)_k * op_k(x).

    x: Tensor[B, N, D]; alpha: Tensor[K] logits; ops: the K candidate ops (OpType or
    name, no duplicates) in alpha order; param_outputs: Tensor[B, N, D] outputs of the
    parametric candidates (conv_*, sep_conv_*), in the order they appear in ``ops``.
    op_k(x) is nas.signal_ops.apply_parameter_free for the parameter-free ops and the
    next param_output for the parametric ones. Returns Tensor[B, N, D].
    """
    from ..signal_ops import apply_parameter_free
    from ..space import all_ops

    codes = mixed_op_codes(x, alpha, ops, param_outputs)
    order = all_ops()
    weights = torch.softmax(alpha, dim=0)
    outs = iter(param_outputs)
    terms = []
    for k, code in enumerate(codes):
        op = order[code]
        o = apply_parameter_free(op, x) if op.value in _MIXED_INLINE else next(outs)
        terms.append(weights[k] * o)
    return sum(terms[1:], terms[0])
