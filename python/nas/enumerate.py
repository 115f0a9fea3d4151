"""Exhaustive enumeration and cost scoring over a whole cell search space.

Answers "which cells of this space are fastest, smallest, or best under my budget?"
exactly, with native kernels (``torch.ops.nas.enumerate_*``, CPU and CUDA) that never
materialise the cells: top-k, Pareto front, counts and histograms of a linear score of
per-cell feature sums, optionally with dead nodes pruned; and a branch-and-bound top-k
for spaces far too large to scan (6 nodes: 3.5e13 cells, 8 nodes: 2**84).

Scores. ``op_features`` is a [num_ops, F] table (e.g. ``op_feature_table``: FLOPs,
bytes, params); a cell's features are their sums over its edges and its score is
``bias + coeffs . features``. The arithmetic is fixed (nas/ops/_reference.py gives it
to the bit), so CPU, CUDA and the references agree exactly, ties going to the lower
index.

Constraints map a feature column to inclusive (low, high) bounds, either end None:
``{2: (None, 50_000)}`` keeps cells with at most 50,000 parameters.

prune_dead: a node that no non-zero path connects from node 0 or to the last node is
dead, and the edges into or out of it cost nothing (a runtime skips them).

Filters (top_k_cells, pareto_front, count_cells, score_histogram, search_top_k; off by
default): ``connected_only`` keeps only cells whose output depends on the input (a
non-zero path joins node 0 to the last node; the all-zero cell is not "the fastest
model"); ``distinct`` keeps only cells whose every non-zero edge is live, i.e. one
index per pruned cell (the canonical one, which ``count_cells(...).distinct`` counts).
Both read only which edges carry the zero op, with or without prune_dead; spaces
without a zero op pass every cell.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .log import get_logger
from .ops import _reference
from .ops.enumerate_cells import (
    CellScan,
    enumerate_count,
    enumerate_pareto,
    enumerate_score_cells,
    enumerate_search_top_k,
    enumerate_top_k,
)
from .space import OpType, SearchSpace

_log = get_logger(__name__)

Constraints = Mapping[int, tuple[float | None, float | None]]
CoeffsLike = Sequence[float] | np.ndarray | Tensor | int

# Native calls scan at most this many cells each: a progress bar advances between
# them and Ctrl-C is honoured within about a second.
SCAN_CHUNK = 1 << 28
# Largest space the exhaustive ops will scan (indices are int64).
MAX_SCAN_CELLS = 2**63 - 1
# Most cells a top-k returns: each kept entry costs ~16 bytes per thread while the scan
# runs and a row of every output; larger k are bulk queries (score_cells, count_cells).
MAX_TOP_K = 10**6
# Most cells score_cells materialises in one call ([count, F + 1] float64: 2 GiB at F = 3)
# and most histogram bins; past them a request is refused before anything is allocated.
MAX_SCORE_CELLS = 2**26
MAX_BINS = 10**6


class SearchBudgetExceeded(RuntimeError):
    """``search_top_k`` stopped at its budget (``max_nodes`` or ``time_limit``) before it
    could prove its answer exact. ``nodes`` / ``seconds``: what it had spent."""

    def __init__(self, message: str, nodes: int | None = None, seconds: float = 0.0):
        super().__init__(message)
        self.nodes = nodes
        self.seconds = seconds


@dataclass(frozen=True)
class TopK:
    """The best cells, best first. indices Tensor[n] int64 (or a list of ints for spaces
    past int64), scores Tensor[n] float64, features Tensor[n, F] float64."""

    indices: Tensor | list[int]
    scores: Tensor
    features: Tensor


@dataclass(frozen=True)
class ParetoFront:
    """Non-dominated objective pairs, sorted by objective 0 (ascending). indices
    Tensor[n] int64: lowest index reaching each pair; values Tensor[n, 2]; counts
    Tensor[n] int64: cells reaching each pair."""

    indices: Tensor
    values: Tensor
    counts: Tensor


@dataclass(frozen=True)
class CellCount:
    """count: cells satisfying the constraints; distinct: classes of them that prune to
    the same runtime cell (== count without prune_dead or without a zero op)."""

    count: int
    distinct: int


@dataclass(frozen=True)
class Histogram:
    """counts Tensor[bins] int64 over edges Tensor[bins + 1] (bins are [lo, hi) and the
    last is closed); below/above: qualifying cells outside the range."""

    counts: Tensor
    edges: Tensor
    below: int
    above: int


# ------------------------------------------------------------------ argument handling
def _table(space: SearchSpace, op_features: np.ndarray | Tensor) -> Tensor:
    if not space.ops:
        raise ValueError("the search space has an empty op list")
    t = torch.as_tensor(op_features).detach().to("cpu", torch.float64)
    if t.dim() != 2:
        raise ValueError(f"op_features must be [num_ops, F], got shape {tuple(t.shape)}")
    if t.shape[0] != space.num_ops:
        raise ValueError(
            f"op_features has {t.shape[0]} rows, the space has {space.num_ops} ops "
            "(one row per op, in the space's op order)"
        )
    if t.shape[1] < 1:
        raise ValueError("op_features has no feature columns")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("op_features must be finite (no NaN or infinity)")
    return t.contiguous()


def _coeffs(coeffs: CoeffsLike | None, nf: int, name: str = "coeffs") -> Tensor:
    if coeffs is None:
        return torch.zeros(nf, dtype=torch.float64)
    if isinstance(coeffs, (int, np.integer)) and not isinstance(coeffs, bool):
        if not 0 <= coeffs < nf:
            raise ValueError(f"{name} column {coeffs} is out of range [0, {nf})")
        c = torch.zeros(nf, dtype=torch.float64)
        c[int(coeffs)] = 1.0
        return c
    c = torch.as_tensor(np.asarray(coeffs, dtype=np.float64))
    if c.shape != (nf,):
        raise ValueError(f"{name} must have {nf} entries (one per feature), got {tuple(c.shape)}")
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{name} must be finite, got {c.tolist()}")
    return c


def _bounds(constraints: Constraints | None, nf: int) -> tuple[Tensor, Tensor]:
    low = torch.full((nf,), -math.inf, dtype=torch.float64)
    high = torch.full((nf,), math.inf, dtype=torch.float64)
    for col, pair in (constraints or {}).items():
        if isinstance(col, bool) or not isinstance(col, (int, np.integer)) or not 0 <= col < nf:
            raise ValueError(f"constraints key {col!r} is not a feature column in [0, {nf})")
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"constraints[{col}] must be a (low, high) pair, got {pair!r}"
            ) from None
        for v, name in ((lo, "low"), (hi, "high")):
            if v is not None and (not isinstance(v, (int, float, np.number)) or math.isnan(v)):
                raise ValueError(f"constraints[{col}] {name} bound must be a number, got {v!r}")
        if lo is not None:
            low[col] = float(lo)
        if hi is not None:
            high[col] = float(hi)
        if low[col] > high[col]:
            raise ValueError(f"constraints[{col}] is empty: low {lo} > high {hi}")
    return low, high


def _range(space: SearchSpace, start: int, count: int | None) -> tuple[int, int]:
    n = space.num_cells()
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    if count is None:
        count = n - start
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if start + count > n:
        raise ValueError(f"range [{start}, {start + count}) is past num_cells = {n}")
    if start + count > MAX_SCAN_CELLS:
        raise ValueError(
            f"cannot scan {count} cells (indices pass int64); use search_top_k for an exact "
            "top-k over huge spaces"
        )
    return int(start), int(count)


def _space_args(space: SearchSpace) -> tuple[int, int]:
    if not 2 <= space.num_nodes <= 11:
        raise ValueError(f"enumeration needs 2 <= num_nodes <= 11, got {space.num_nodes}")
    zero = space.ops.index(OpType.ZERO) if OpType.ZERO in space.ops else -1
    return space.num_nodes, zero


def _k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > MAX_TOP_K:
        raise ValueError(
            f"k = {k} is more than the {MAX_TOP_K:,} cells a top-k returns; use score_cells "
            "or count_cells for bulk queries"
        )
    return int(k)


def _device(device: str | torch.device) -> torch.device:
    """The device to run on, refused with a ValueError when this build cannot use it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device: {exc}") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device {device!r}: enumeration runs on 'cpu' or 'cuda'")
    from ._native import build_info, has_native

    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise ValueError(f"device {device!r} is not available: {why}")
    if has_native() and "cuda" not in build_info()["backends"]:
        raise ValueError(f"device {device!r}: nas._C was built without its CUDA kernels")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return dev


def _pieces(start: int, count: int, progress: bool, desc: str):
    """Yields (start, count) sub-ranges of at most SCAN_CHUNK cells, with a progress bar."""
    bar = None
    if progress and count > SCAN_CHUNK:
        from tqdm import tqdm

        bar = tqdm(total=count, desc=desc, unit="cell", unit_scale=True, leave=False)
    try:
        for a in range(start, start + count, SCAN_CHUNK):
            n = min(SCAN_CHUNK, start + count - a)
            yield a, n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    if count == 0:
        yield start, 0


def _scan(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike | Sequence[CoeffsLike] | None,
    constraints: Constraints | None = None,
    *,
    bias: float = 0.0,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
    pareto: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> CellScan:
    """The validated space, score, constraint set and filters on ``device`` (pareto:
    coeffs is the two objectives)."""
    t = _table(space, op_features)
    nf = t.shape[1]
    c = _objectives(coeffs, nf) if pareto else _coeffs(coeffs, nf)  # type: ignore[arg-type]
    low, high = _bounds(constraints, nf)
    nodes, zero = _space_args(space)
    dev = _device(device)
    for name, v in (("connected_only", connected_only), ("distinct", distinct)):
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {v!r}")
    return CellScan(
        t, c, float(bias), low, high, nodes, zero, bool(prune_dead), bool(connected_only),
        bool(distinct),
    ).to(dev)  # fmt: skip


# ------------------------------------------------------------------ public API
def score_cells(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike | None = None,
    *,
    bias: float = 0.0,
    start: int = 0,
    count: int | None = None,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """Features and scores of the cells [start, start + count) in index order.

    Returns (features Tensor[count, F] float64, scores Tensor[count] float64; the
    scores are bias + coeffs . features, all zero-coefficient when coeffs is None).
    For slices that fit in memory (count defaults to the whole space).
    """
    scan = _scan(space, op_features, coeffs, bias=bias, prune_dead=prune_dead, device=device)
    start, count = _range(space, start, count)
    if count > MAX_SCORE_CELLS:
        raise ValueError(
            f"count = {count} cells is more than score_cells materialises at once "
            f"({MAX_SCORE_CELLS:,}); pass start/count slices, or use top_k_cells, count_cells "
            "or score_histogram, which stream"
        )
    return enumerate_score_cells(scan, start, count)


def top_k_cells(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike,
    k: int,
    constraints: Constraints | None = None,
    *,
    largest: bool = False,
    bias: float = 0.0,
    start: int = 0,
    count: int | None = None,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> TopK:
    """The k lowest-scoring (highest with largest=True) cells satisfying the
    constraints and filters (module docstring), streaming over [start, start + count);
    ties go to the lower index. coeffs: [F] weights, or a column index to rank by one
    feature. Fewer than k rows come back when fewer cells qualify."""
    scan = _scan(space, op_features, coeffs, constraints, bias=bias, prune_dead=prune_dead,
                 device=device, connected_only=connected_only, distinct=distinct)  # fmt: skip
    k = _k(k)
    start, count = _range(space, start, count)
    parts = [
        enumerate_top_k(scan, a, n, k, largest) for a, n in _pieces(start, count, progress, "top-k")
    ]
    if len(parts) == 1:
        return TopK(*parts[0])
    idx = torch.cat([p[0].cpu() for p in parts]).numpy()
    sc = torch.cat([p[1].cpu() for p in parts]).numpy()
    ft = torch.cat([p[2].cpu() for p in parts])
    order = np.lexsort((idx, -sc if largest else sc))[:k]
    sel = torch.from_numpy(order)
    return TopK(
        torch.from_numpy(idx[order]).to(device),
        torch.from_numpy(sc[order]).to(device),
        ft[sel].to(device),
    )


def _objectives(objectives: Sequence[CoeffsLike], nf: int) -> Tensor:
    if len(objectives) != 2:
        raise ValueError(f"objectives must name exactly 2 objectives, got {len(objectives)}")
    return torch.stack([_coeffs(o, nf, f"objectives[{i}]") for i, o in enumerate(objectives)])


def pareto_front(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    objectives: Sequence[CoeffsLike],
    constraints: Constraints | None = None,
    *,
    start: int = 0,
    count: int | None = None,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> ParetoFront:
    """The exact set of non-dominated (objective 0, objective 1) pairs over the cells
    satisfying the constraints and filters, both minimised (negate coefficients to maximise).
    Each objective is a [F] coefficient vector or a feature column, e.g.
    ``objectives=[nas.latency_coeffs(hw)[0], 2]`` for latency vs params."""
    scan = _scan(space, op_features, objectives, constraints, prune_dead=prune_dead,
                 device=device, pareto=True, connected_only=connected_only,
                 distinct=distinct)  # fmt: skip
    start, count = _range(space, start, count)
    parts = [enumerate_pareto(scan, a, n) for a, n in _pieces(start, count, progress, "pareto")]
    if len(parts) == 1:
        return ParetoFront(*parts[0])
    a, b, i, n = _reference.pareto_merge(
        torch.cat([p[1][:, 0].cpu() for p in parts]).numpy(),
        torch.cat([p[1][:, 1].cpu() for p in parts]).numpy(),
        torch.cat([p[0].cpu() for p in parts]).numpy(),
        torch.cat([p[2].cpu() for p in parts]).numpy(),
    )
    return ParetoFront(
        torch.from_numpy(i).to(device),
        torch.from_numpy(np.stack([a, b], axis=1).reshape(-1, 2)).to(device),
        torch.from_numpy(n).to(device),
    )


def _count_scan(
    space, op_features, coeffs, bias, constraints, bins, lo, hi, start, count, prune_dead, device,
    progress, connected_only, distinct,
):  # fmt: skip
    scan = _scan(space, op_features, coeffs, constraints, bias=bias, prune_dead=prune_dead,
                 device=device, connected_only=connected_only, distinct=distinct)  # fmt: skip
    start, count = _range(space, start, count)
    hist = torch.zeros(bins + 2, dtype=torch.int64)
    totals = torch.zeros(2, dtype=torch.int64)
    for a, n in _pieces(start, count, progress, "count"):
        h, tot = enumerate_count(scan, a, n, bins, lo, hi)
        hist += h.cpu()
        totals += tot.cpu()
    return hist, totals


def count_cells(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    constraints: Constraints | None = None,
    *,
    start: int = 0,
    count: int | None = None,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> CellCount:
    """How many cells of [start, start + count) satisfy the constraints and filters,
    and (with prune_dead) how many distinct pruned cells they make up: with prune_dead,
    ``count_cells(..., distinct=True).count`` equals ``count_cells(...).distinct``."""
    _, totals = _count_scan(
        space, op_features, None, 0.0, constraints, 0, 0.0, 1.0, start, count, prune_dead,
        device, progress, connected_only, distinct,
    )  # fmt: skip
    return CellCount(int(totals[0]), int(totals[1]))


def default_score_range(
    top_k: Callable[..., TopK], space: SearchSpace, op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike, constraints: Constraints | None, **kw: Any,
) -> tuple[float, float] | None:  # fmt: skip
    """score_histogram's default range from two top-1 scans made with ``top_k``
    (``top_k_cells`` here, or its torch.distributed form): (min, max one ulp up, or
    min + 1 when all scores are equal) so that the last bin closes on the max; None
    when no cell qualifies."""
    lo_r = top_k(space, op_features, coeffs, 1, constraints, **kw)
    hi_r = top_k(space, op_features, coeffs, 1, constraints, largest=True, **kw)
    if len(lo_r.scores) == 0:
        return None
    lo, hi = float(lo_r.scores[0]), float(hi_r.scores[0])
    return lo, (float(np.nextafter(hi, math.inf)) if hi > lo else lo + 1.0)


def score_histogram(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike,
    bins: int = 20,
    range: tuple[float, float] | None = None,  # noqa: A002  (numpy's name for it)
    constraints: Constraints | None = None,
    *,
    bias: float = 0.0,
    start: int = 0,
    count: int | None = None,
    prune_dead: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> Histogram:
    """Histogram of the score over the cells satisfying the constraints and filters:
    ``bins`` equal-width bins over ``range`` (default: the qualifying cells' min and max
    score, found by two top-1 scans; the last bin then closes on the max)."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if bins > MAX_BINS:
        raise ValueError(f"bins = {bins} is more than {MAX_BINS:,}")
    if range is None:
        kw = dict(bias=bias, start=start, count=count, prune_dead=prune_dead, device=device,
                  connected_only=connected_only, distinct=distinct)  # fmt: skip
        found = default_score_range(top_k_cells, space, op_features, coeffs, constraints, **kw)
        if found is None:
            edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)
            return Histogram(torch.zeros(bins, dtype=torch.int64), edges, 0, 0)
        lo, hi = found
    else:
        lo, hi = float(range[0]), float(range[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"range must be finite with low < high, got {range!r}")
    hist, _ = _count_scan(
        space, op_features, coeffs, bias, constraints, int(bins), lo, hi, start, count,
        prune_dead, device, progress, connected_only, distinct,
    )  # fmt: skip
    edges = torch.linspace(lo, hi, int(bins) + 1, dtype=torch.float64)
    return Histogram(hist[1:-1].clone(), edges, int(hist[0]), int(hist[-1]))


def _run_search(fn, time_limit: float | None, max_nodes: int):
    """Runs the native search in a worker thread (the op releases the GIL) so that
    Ctrl-C and the time limit reach it: either sets the flag the kernel polls and
    waits for it to stop. Returns (result, seconds) or raises."""
    from ._native import _C

    if _C is None:  # the reference is an exhaustive scan: nothing to poll
        t0 = time.perf_counter()
        return fn(), time.perf_counter() - t0
    box: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["out"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["exc"] = exc
        finally:
            done.set()

    t0 = time.perf_counter()
    worker = threading.Thread(target=work, name="nas-search", daemon=True)
    timed_out = cancelled = False
    worker.start()
    try:
        while not done.wait(0.05):
            if time_limit is not None and not timed_out and time.perf_counter() - t0 > time_limit:
                timed_out = cancelled = True
                _C._set_enumerate_cancel(True)
    except KeyboardInterrupt:
        cancelled = True
        _C._set_enumerate_cancel(True)
        done.wait()
        raise
    finally:
        if cancelled and done.is_set():
            _C._set_enumerate_cancel(False)
    seconds = time.perf_counter() - t0
    exc = box.get("exc")
    if exc is not None:
        msg = str(exc)
        if timed_out and "cancelled" in msg:
            raise SearchBudgetExceeded(
                f"branch and bound stopped at time_limit = {time_limit:g} s before it could "
                "prove the top-k exact",
                None,
                seconds,
            ) from None
        if "max_nodes" in msg:
            raise SearchBudgetExceeded(
                f"branch and bound expanded max_nodes = {max_nodes:,} search nodes in "
                f"{seconds:.1f} s before it could prove the top-k exact",
                max_nodes,
                seconds,
            ) from None
        raise exc
    return box["out"], seconds


def search_top_k(
    space: SearchSpace,
    op_features: np.ndarray | Tensor,
    coeffs: CoeffsLike,
    k: int,
    constraints: Constraints | None = None,
    *,
    largest: bool = False,
    bias: float = 0.0,
    max_nodes: int = 10**8,
    time_limit: float | None = None,
    connected_only: bool = False,
    distinct: bool = False,
) -> TopK:
    """Exact top-k over the whole space by branch and bound. Returns exactly what
    ``top_k_cells(space, ...)`` returns, also for spaces far too large to scan
    (indices as Python ints then). Additive scores only: no prune_dead. The filters
    (connected_only, distinct) are checked at complete cells.

    Integer-valued op features (``op_feature_table``'s are) make every feature sum
    exact: the search then walks multisets of op classes (ops with identical cost
    rows form one class), since a cell's score depends on which ops sit on its outer
    edges, not where; it bounds them by a Lagrangian relaxation of each constraint,
    then exactly at each multiset, and expands the winners into cells in index order.
    Exact ties (avg_pool vs max_pool, permuted edges) then cost one visit per multiset:
    the slowest cells under a parameter budget at 11 nodes take milliseconds. Other
    tables are searched cell by cell (depth-first over edge prefixes in index order),
    where near-ties that the rounding margin keeps open can take very long.

    Budget: past ``max_nodes`` search nodes or ``time_limit`` seconds it raises
    ``SearchBudgetExceeded`` (a RuntimeError); Ctrl-C stops it within milliseconds.
    With the filters on, the multiset search's answer serves when every cell in it
    passes; otherwise the cell search checks them cell by cell."""
    scan = _scan(space, op_features, coeffs, constraints, bias=bias,
                 connected_only=connected_only, distinct=distinct)  # fmt: skip
    k = _k(k)
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, (int, np.integer)) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    if time_limit is not None and not (
        isinstance(time_limit, (int, float, np.number))
        and not isinstance(time_limit, bool)
        and time_limit > 0
    ):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    (codes, scores, feats), seconds = _run_search(
        lambda: enumerate_search_top_k(scan, k, largest, int(max_nodes)),
        None if time_limit is None else float(time_limit),
        int(max_nodes),
    )
    _log.debug("branch and bound: exact top-%d of %.3e cells in %.2f s", k, space.num_cells(),
               seconds)  # fmt: skip
    kk = space.num_ops
    indices: list[int] = []
    for row in codes.tolist():
        v = 0
        for d in row:
            v = v * kk + d
        indices.append(v)
    out: Tensor | list[int] = indices
    if space.num_cells() <= MAX_SCAN_CELLS:
        out = torch.tensor(indices, dtype=torch.int64)
    return TopK(out, scores, feats)


__all__ = [
    "CellCount",
    "Histogram",
    "ParetoFront",
    "SearchBudgetExceeded",
    "TopK",
    "count_cells",
    "pareto_front",
    "score_cells",
    "score_histogram",
    "search_top_k",
    "top_k_cells",
]
