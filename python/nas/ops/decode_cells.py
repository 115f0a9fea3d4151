"""``nas.ops.decode_cells``: cell indices -> per-edge op codes (native op + fake)."""

from __future__ import annotations

import torch

from .._native import call_native, has_native
from . import _reference


def decode_cells(indices: torch.Tensor, num_ops: int, num_edges: int) -> torch.Tensor:
    """Decode cell indices into op codes.

    indices: Tensor[n] int64, each in [0, num_ops ** num_edges).
    Returns Tensor[n, num_edges] int64: the mixed-radix digits of each index in base
    num_ops, last edge fastest (code k means the space's k-th op).
    """
    return call_native(
        "decode_cells", indices, int(num_ops), int(num_edges), reference=_reference.decode_cells
    )


if has_native():

    @torch.library.register_fake("nas::decode_cells")
    def _decode_cells_fake(indices: torch.Tensor, num_ops: int, num_edges: int) -> torch.Tensor:
        torch._check(indices.dim() == 1, lambda: "indices must be a 1-D tensor [n]")
        torch._check(indices.dtype == torch.int64, lambda: "indices must be int64")
        return indices.new_empty((indices.shape[0], num_edges))
