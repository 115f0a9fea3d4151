"""Pure-PyTorch references of every native op: the spec.

Tests compare the kernels against these, benchmarks time against them, and they are
the fallback when ``nas._C`` is missing. Clear and vectorised, never fast tricks.
"""

from __future__ import annotations

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
