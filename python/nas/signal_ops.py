"""The candidate ops as modules on signal tensors, and a discrete cell built from them.

Signal models run cells on patch embeddings ``x: Tensor[B, N, D]`` (batch x series,
patches, hidden). Every op maps [B, N, D] -> [B, N, D] and works along N (the patch
axis), treating D as channels:

* ``avg_pool_3x3``: mean over the window {n-1, n, n+1} ∩ [0, N) (padding 1, stride 1).
  Padded positions are not counted: the edges average 2 values, not 3 with a zero.
* ``max_pool_3x3``: max over the same window; padding never wins (it is -inf).
* ``skip_connect``: identity. ``zero``: zeros (``x * 0`` would turn inf into NaN).
* ``conv_3x3`` / ``conv_5x5``: ReLU, then Conv1d(D, D, k, padding=k//2, bias=False).
* ``sep_conv_3x3`` / ``sep_conv_5x5``: ReLU, then depthwise Conv1d(D, D, k,
  padding=k//2, groups=D, bias=False), then pointwise Conv1d(D, D, 1, bias=False).

No normalisation lives inside an op (the signal model normalises between cells), so a
conv op's parameters are exactly ``nas.op_params_1d(D)``: k*D*D, or k*D + D*D for the
separable ones, and every op is a plain, exportable sequence a GGUF runtime can replay.

A discrete cell (:class:`CellModule`) on ``num_nodes`` nodes: node 0 is the input,
node j = sum over the cell's edges (i -> j) of op_ij(node i), and the output is the
last node. A node with no incoming edge is zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The parameter-free ops are the spec the fused mixed_op kernel must match, so they
# live with the native-op references; re-exported here.
from .ops._reference import (
    PARAMETER_FREE_OPS,
    _check_signal,
    apply_parameter_free,
    avg_pool_3,
    max_pool_3,
)
from .space import Cell, OpType, as_op

__all__ = [
    "PARAMETER_FREE_OPS",
    "CellModule",
    "ConvOp",
    "ParameterFreeOp",
    "SepConvOp",
    "apply_parameter_free",
    "avg_pool_3",
    "build_op",
    "max_pool_3",
]

_KERNEL = {
    OpType.CONV_3X3: 3,
    OpType.CONV_5X5: 5,
    OpType.SEP_CONV_3X3: 3,
    OpType.SEP_CONV_5X5: 5,
}


def _is_transposed(x: torch.Tensor) -> bool:
    """True when x: [B, N, D] is contiguous [B, D, N] storage seen as [B, N, D] (what a
    Conv1d leaves after the transpose back), not contiguous [B, N, D] itself."""
    return not x.is_contiguous() and x.transpose(1, 2).is_contiguous()


class ParameterFreeOp(nn.Module):
    """avg_pool_3x3, max_pool_3x3, skip_connect or zero on [B, N, D].

    avg_pool_3x3 on a transposed input (a conv's output) first copies it to contiguous
    [B, N, D]: ATen's avg_pool1d is vectorised over channels only when they are
    innermost, and on the transposed layout it ran 7-17x slower than copy + pool on 1
    thread (measured at [224, 42, 16], [16, 64, 128], [16, 64, 256]). The values are
    those of the reference up to float rounding (tests/test_signal_ops.py). max_pool is
    the other way round (faster on the transposed layout) and is left as it comes.
    """

    def __init__(self, op: OpType | str) -> None:
        super().__init__()
        self.op = as_op(op)
        if self.op not in PARAMETER_FREE_OPS:
            raise ValueError(f"op {self.op.value!r} is not parameter-free")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == OpType.AVG_POOL_3X3 and _is_transposed(x):
            x = x.contiguous()
        return apply_parameter_free(self.op, x)

    def extra_repr(self) -> str:
        return self.op.value


class ConvOp(nn.Module):
    """conv_k: ReLU -> Conv1d(D, D, k, padding=k//2, bias=False) along N of [B, N, D]."""

    def __init__(self, op: OpType | str, hidden: int) -> None:
        super().__init__()
        self.op = as_op(op)
        k = _KERNEL[self.op]
        self.conv = nn.Conv1d(hidden, hidden, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_signal(x)
        return self.conv(F.relu(x).transpose(1, 2)).transpose(1, 2)


class SepConvOp(nn.Module):
    """sep_conv_k: ReLU -> depthwise Conv1d(k) -> pointwise Conv1d(1), along N of [B, N, D]."""

    def __init__(self, op: OpType | str, hidden: int) -> None:
        super().__init__()
        self.op = as_op(op)
        k = _KERNEL[self.op]
        self.depthwise = nn.Conv1d(hidden, hidden, k, padding=k // 2, groups=hidden, bias=False)
        self.pointwise = nn.Conv1d(hidden, hidden, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_signal(x)
        return self.pointwise(self.depthwise(F.relu(x).transpose(1, 2))).transpose(1, 2)


def build_op(op: OpType | str, hidden: int) -> nn.Module:
    """The module of ``op`` for hidden size ``hidden`` (D)."""
    op = as_op(op)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    if op in PARAMETER_FREE_OPS:
        return ParameterFreeOp(op)
    if op in (OpType.CONV_3X3, OpType.CONV_5X5):
        return ConvOp(op, hidden)
    return SepConvOp(op, hidden)


class CellModule(nn.Module):
    """A discrete cell as a module: x: Tensor[B, N, D] -> Tensor[B, N, D].

    Node 0 is x; node j sums op_ij(node i) over the cell's edges into j; the output is
    the last node. Edges are run in (dst, src) order, so node i is complete before any
    edge leaves it. ``zero`` edges are kept as modules (so the op list matches the
    cell) but skipped in forward: they add nothing.
    """

    def __init__(self, cell: Cell, hidden: int) -> None:
        super().__init__()
        cell.validate()
        self.cell = cell
        self.num_nodes = cell.num_nodes
        order = sorted(range(len(cell.edges)), key=lambda k: (cell.edges[k].dst, cell.edges[k].src))
        self._edges = [
            (cell.edges[k].src, cell.edges[k].dst, as_op(cell.edges[k].op)) for k in order
        ]
        self.ops = nn.ModuleList(build_op(op, hidden) for _, _, op in self._edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_signal(x)
        nodes: list[torch.Tensor | None] = [x] + [None] * (self.num_nodes - 1)
        for (src, dst, op), module in zip(self._edges, self.ops, strict=True):
            if op == OpType.ZERO or nodes[src] is None:
                continue
            y = module(nodes[src])
            nodes[dst] = y if nodes[dst] is None else nodes[dst] + y
        out = nodes[-1]
        return torch.zeros_like(x) if out is None else out
