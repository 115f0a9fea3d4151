"""``nas.ops.enumerate_*``: exhaustive scans of a cell search space (native ops + fakes).

Thin typed wrappers over ``torch.ops.nas.enumerate_*`` that fall back to the
references in ``nas/ops/_reference.py`` when ``nas._C`` is missing. The high-level API
(spaces, constraints as dicts, progress bars) is ``nas.enumerate``.

What every op shares (the space, the score, the bounds) travels as one ``CellScan``;
each wrapper adds its own arguments and flattens them into the op's schema
(csrc/ops.cpp), whose order the references in ``_reference`` keep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .._native import call_native, has_native


@dataclass(frozen=True)
class CellScan:
    """The space, score and constraint set of an enumerate op.

    op_features Tensor[num_ops, F] float64: per-op features, a cell's features are
    their sums over its edges. coeffs Tensor[F] float64 and bias: the score
    bias + coeffs . features (Tensor[2, F] objectives for a Pareto front). low, high
    Tensor[F] float64: inclusive feature bounds, -inf / +inf for none. zero_op: code of
    the zero op, -1 for none; prune_dead: edges of dead nodes cost nothing.
    connected_only: only cells whose output depends on the input (a path of non-zero
    edges joins node 0 to the last node); distinct: only cells whose every non-zero
    edge is live, one per class of cells that prune alike. Both read the zero pattern
    only (not prune_dead); without a zero op every cell passes. Unused by score_cells.
    """

    op_features: Tensor
    coeffs: Tensor
    bias: float
    low: Tensor
    high: Tensor
    num_nodes: int
    zero_op: int = -1
    prune_dead: bool = False
    connected_only: bool = False
    distinct: bool = False

    def to(self, device: str | torch.device) -> CellScan:
        """The same scan with its tensors on ``device``."""
        return replace(
            self,
            op_features=self.op_features.to(device),
            coeffs=self.coeffs.to(device),
            low=self.low.to(device),
            high=self.high.to(device),
        )

    def _score(self) -> tuple:
        return self.op_features, self.coeffs, float(self.bias)

    def _space(self) -> tuple:
        return int(self.num_nodes), int(self.zero_op), bool(self.prune_dead)

    def _filters(self) -> tuple:
        return bool(self.connected_only), bool(self.distinct)


def enumerate_score_cells(scan: CellScan, start: int, count: int) -> tuple[Tensor, Tensor]:
    """Features and scores of the cells [start, start + count) (bounds unused).

    Returns (features Tensor[count, F] float64, scores Tensor[count] float64).
    """
    return call_native("enumerate_score_cells", *scan._score(), *scan._space(), start, count)


def enumerate_top_k(
    scan: CellScan, start: int, count: int, k: int, largest: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The k best cells satisfying the bounds and filters, best first, ties to the
    lower index.

    Returns (indices Tensor[n] int64, scores Tensor[n] float64, features Tensor[n, F]
    float64), n = min(k, qualifying cells).
    """
    args = (*scan._score(), scan.low, scan.high, *scan._space(), int(start), int(count))
    return call_native("enumerate_top_k", *args, int(k), bool(largest), *scan._filters())


def enumerate_count(
    scan: CellScan, start: int, count: int, bins: int, hist_min: float, hist_max: float
) -> tuple[Tensor, Tensor]:
    """Counts the cells satisfying the bounds and filters.

    Returns (hist Tensor[bins + 2] int64: cells scoring below hist_min, in each of the
    bins equal-width bins of [hist_min, hist_max), at or above hist_max; totals
    Tensor[2] int64: qualifying cells, and those among them that are canonical under
    prune_dead, i.e. the number of distinct pruned cells).
    """
    args = (*scan._score(), scan.low, scan.high, *scan._space(), int(start), int(count))
    return call_native(
        "enumerate_count", *args, int(bins), float(hist_min), float(hist_max), *scan._filters()
    )


def enumerate_pareto(scan: CellScan, start: int, count: int) -> tuple[Tensor, Tensor, Tensor]:
    """The exact Pareto front (both objectives minimised) of the cells satisfying the
    bounds and filters; scan.coeffs: Tensor[2, F] float64 (objective r is the score with coeffs
    row r and bias 0; scan.bias is unused).

    Returns (indices Tensor[n] int64: the lowest index reaching each non-dominated
    objective pair, values Tensor[n, 2] float64 sorted by objective 0, counts Tensor[n]
    int64: cells reaching each pair).
    """
    args = (scan.op_features, scan.coeffs, scan.low, scan.high, *scan._space())
    return call_native("enumerate_pareto", *args, int(start), int(count), *scan._filters())


def enumerate_search_top_k(
    scan: CellScan, k: int, largest: bool, max_nodes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Branch-and-bound top-k over the whole space (prune_dead unused; zero_op serves
    the filters): the same cells, in the same order, as enumerate_top_k over
    [0, num_cells). Cells are returned as op codes (indices of 8-node spaces pass int64).

    Returns (codes Tensor[n, num_edges] int64, scores Tensor[n], features Tensor[n, F]).
    """
    args = (*scan._score(), scan.low, scan.high, int(scan.num_nodes))
    return call_native(
        "enumerate_search_top_k", *args, int(k), bool(largest), int(max_nodes),
        int(scan.zero_op), *scan._filters(),
    )  # fmt: skip


if has_native():

    @torch.library.register_fake("nas::enumerate_score_cells")
    def _score_cells_fake(op_features, coeffs, bias, num_nodes, zero_op, prune_dead, start, count):
        f = op_features.shape[1]
        return op_features.new_empty((count, f)), op_features.new_empty((count,))

    def _data_dependent_rows(op_features: Tensor) -> int:
        return torch.library.get_ctx().new_dynamic_size()

    @torch.library.register_fake("nas::enumerate_top_k")
    def _top_k_fake(op_features, coeffs, bias, low, high, num_nodes, zero_op, prune_dead, start,
                    count, k, largest, connected_only=False, distinct=False):  # fmt: skip
        n = _data_dependent_rows(op_features)
        f = op_features.shape[1]
        return (
            op_features.new_empty((n,), dtype=torch.int64),
            op_features.new_empty((n,)),
            op_features.new_empty((n, f)),
        )

    @torch.library.register_fake("nas::enumerate_count")
    def _count_fake(op_features, coeffs, bias, low, high, num_nodes, zero_op, prune_dead, start,
                    count, bins, hist_min, hist_max, connected_only=False,
                    distinct=False):  # fmt: skip
        return (
            op_features.new_empty((bins + 2,), dtype=torch.int64),
            op_features.new_empty((2,), dtype=torch.int64),
        )

    @torch.library.register_fake("nas::enumerate_pareto")
    def _pareto_fake(op_features, objectives, low, high, num_nodes, zero_op, prune_dead, start,
                     count, connected_only=False, distinct=False):  # fmt: skip
        n = _data_dependent_rows(op_features)
        return (
            op_features.new_empty((n,), dtype=torch.int64),
            op_features.new_empty((n, 2)),
            op_features.new_empty((n,), dtype=torch.int64),
        )

    @torch.library.register_fake("nas::enumerate_search_top_k")
    def _search_fake(op_features, coeffs, bias, low, high, num_nodes, k, largest, max_nodes,
                     zero_op=-1, connected_only=False, distinct=False):  # fmt: skip
        n = _data_dependent_rows(op_features)
        e = num_nodes * (num_nodes - 1) // 2
        return (
            op_features.new_empty((n, e), dtype=torch.int64),
            op_features.new_empty((n,)),
            op_features.new_empty((n, op_features.shape[1])),
        )
