"""Enumeration over torch.distributed ranks (e.g. ``torchrun --nproc_per_node=N -m nas
enumerate ...``): each rank scans one contiguous shard of the index range with the
single-process functions of ``nas.enumerate`` and the shards' answers are merged, on
every rank, to exactly what one process returns:

* top-k: the shards' top-k sorted by (score, index), the first k kept (the kernels'
  own tie rule: equal scores go to the lower index);
* Pareto front: the shards' fronts merged and re-filtered to the non-dominated pairs,
  each pair with its lowest index and its summed count (the op's own merge,
  ``_reference.pareto_merge``, also used between chunks of one process);
* counts and histograms: summed (a histogram's default range is first agreed on from
  the global min and max score, so that every shard bins alike).

Without an initialised process group (or with one rank) every function is the plain
``nas.enumerate`` call. Branch and bound (``search_top_k``) walks one tree and does not
shard; the CLI runs it on rank 0 alone.

Every rank must call each function with the same arguments (collectives inside).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import enumerate as _enum
from .enumerate import CellCount, Histogram, ParetoFront, TopK
from .ops import _reference
from .space import SearchSpace


def world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(start: int, count: int, rank: int, size: int) -> tuple[int, int]:
    """(start, count) of ``rank``'s contiguous shard of [start, start + count) split over
    ``size`` ranks: the first ``count % size`` shards hold one cell more."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} is not in [0, {size})")
    base, extra = divmod(count, size)
    return start + rank * base + min(rank, extra), base + (rank < extra)


def _my_shard(space: SearchSpace, kw: dict[str, Any]) -> tuple[int, int, int]:
    """Pops start/count from kw; returns (world size, this rank's start, count)."""
    rank, size = world()
    start = kw.pop("start", 0)
    count = kw.pop("count", None)
    start, count = _enum._range(space, start, count)  # validated as one process would
    a, n = shard(start, count, rank, size)
    return size, a, n


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, obj)
    return parts


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def top_k_cells(
    space: SearchSpace, op_features: Any, coeffs: Any, k: int, constraints: Any = None,
    *, largest: bool = False, **kw: Any,
) -> TopK:  # fmt: skip
    """``nas.enumerate.top_k_cells`` over this process group's ranks (same keywords)."""
    size, a, n = _my_shard(space, kw)
    r = _enum.top_k_cells(space, op_features, coeffs, k, constraints, largest=largest,
                          start=a, count=n, **kw)  # fmt: skip
    if size == 1:
        return r
    dev = r.scores.device
    parts = _gather((_np(r.indices), _np(r.scores), _np(r.features)))  # type: ignore[arg-type]
    idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
    sc = np.concatenate([p[1] for p in parts])
    ft = np.concatenate([p[2] for p in parts])
    order = np.lexsort((idx, -sc if largest else sc))[:k]
    return TopK(
        torch.from_numpy(idx[order]).to(dev),
        torch.from_numpy(sc[order]).to(dev),
        torch.from_numpy(ft[order]).to(dev),
    )


def pareto_front(
    space: SearchSpace, op_features: Any, objectives: Any, constraints: Any = None, **kw: Any
) -> ParetoFront:
    """``nas.enumerate.pareto_front`` over this process group's ranks (same keywords)."""
    size, a, n = _my_shard(space, kw)
    r = _enum.pareto_front(space, op_features, objectives, constraints, start=a, count=n, **kw)
    if size == 1:
        return r
    dev = r.values.device
    parts = _gather((_np(r.values), _np(r.indices), _np(r.counts)))
    vals = np.concatenate([p[0] for p in parts])
    fa, fb, fi, fn = _reference.pareto_merge(
        vals[:, 0].copy(),
        vals[:, 1].copy(),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([p[2] for p in parts]).astype(np.int64),
    )
    return ParetoFront(
        torch.from_numpy(fi).to(dev),
        torch.from_numpy(np.stack([fa, fb], axis=1).reshape(-1, 2)).to(dev),
        torch.from_numpy(fn).to(dev),
    )


def count_cells(
    space: SearchSpace, op_features: Any, constraints: Any = None, **kw: Any
) -> CellCount:
    """``nas.enumerate.count_cells`` over this process group's ranks (same keywords)."""
    size, a, n = _my_shard(space, kw)
    r = _enum.count_cells(space, op_features, constraints, start=a, count=n, **kw)
    if size == 1:
        return r
    parts = _gather((r.count, r.distinct))
    return CellCount(sum(p[0] for p in parts), sum(p[1] for p in parts))


def score_histogram(
    space: SearchSpace, op_features: Any, coeffs: Any, bins: int = 20,
    range: tuple[float, float] | None = None,  # noqa: A002  (numpy's name for it)
    constraints: Any = None, **kw: Any,
) -> Histogram:  # fmt: skip
    """``nas.enumerate.score_histogram`` over this process group's ranks (same keywords);
    the default range is the global one, so the bins equal one process's."""
    _, size = world()
    if size == 1:
        return _enum.score_histogram(space, op_features, coeffs, bins, range, constraints, **kw)
    if range is None:
        shared = {k: v for k, v in kw.items() if k != "progress"}
        found = _enum.default_score_range(
            top_k_cells, space, op_features, coeffs, constraints, **shared
        )
        if found is None:  # nothing qualifies anywhere: as one process answers
            return _enum.score_histogram(
                space, op_features, coeffs, bins, None, constraints, **{**kw, "count": 0}
            )
        range = found  # noqa: A001
    size, a, n = _my_shard(space, kw)
    r = _enum.score_histogram(space, op_features, coeffs, bins, range, constraints, start=a,
                              count=n, **kw)  # fmt: skip
    parts = _gather((_np(r.counts), r.below, r.above))
    counts = torch.from_numpy(np.sum([p[0] for p in parts], axis=0)).to(r.counts.device)
    return Histogram(counts, r.edges, sum(p[1] for p in parts), sum(p[2] for p in parts))


__all__ = ["count_cells", "pareto_front", "score_histogram", "shard", "top_k_cells", "world"]
