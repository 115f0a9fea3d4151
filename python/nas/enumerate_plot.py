"""``nas enumerate --plot``: latency vs parameters of a random sample of the (filtered)
space, with the exact Pareto front of the whole space on top.

The sample is scored by the kernels' own specification (``_reference.enumerate_eval``,
the same arithmetic to the bit), the front comes from ``pareto_front`` (exact, over
every cell); the picture shows how much of the space the front beats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .enumerate import Constraints, _bounds, _space_args, _table
from .ops import _reference
from .report import _pyplot, _save
from .space import SearchSpace

# Indices drawn per round of rejection sampling, and the most rounds: a constraint
# that almost nothing meets gives a small sample rather than a long wait.
_DRAW = 1 << 16
_MAX_ROUNDS = 64


@dataclass(frozen=True)
class Sample:
    """Distinct qualifying cells, in index order: indices [n] int64, latency_s [n],
    params [n]; drawn: how many indices were drawn to find them."""

    indices: np.ndarray
    latency_s: np.ndarray
    params: np.ndarray
    drawn: int


def score_indices(
    space: SearchSpace, table: Any, coeffs: np.ndarray, bias: float, prune_dead: bool,
    idx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(features [n, F], scores [n]) of the given cell indices, exactly as the kernels
    score them."""
    nodes, zero = _space_args(space)
    t = _table(space, table).numpy()
    feats, scores, _ = _reference.enumerate_eval(
        t, np.asarray(coeffs, dtype=np.float64)[None, :], float(bias), nodes, zero,
        prune_dead, np.asarray(idx, dtype=np.int64),
    )  # fmt: skip
    return feats, scores[:, 0]


def sample_space(
    space: SearchSpace, table: Any, coeffs: np.ndarray, bias: float,
    constraints: Constraints | None, prune_dead: bool, size: int, seed: int = 0,
    connected_only: bool = False, distinct: bool = False,
) -> Sample:  # fmt: skip
    """Up to ``size`` distinct cells drawn uniformly from those meeting the constraints
    and the cell filters (nas.enumerate; every one of them when the space holds at most
    ``size`` cells)."""
    if size < 1:
        raise ValueError(f"--plot-sample must be >= 1, got {size}")
    n = space.num_cells()
    t = _table(space, table)
    low, high = (b.numpy() for b in _bounds(constraints, t.shape[1]))
    rng = np.random.default_rng(seed)
    kept = np.zeros(0, dtype=np.int64)
    drawn = 0
    rounds = 1 if n <= size else _MAX_ROUNDS
    for _ in range(rounds):
        idx = np.arange(n, dtype=np.int64) if n <= size else rng.integers(0, n, _DRAW)
        drawn += idx.shape[0]
        feats, _ = score_indices(space, t, coeffs, bias, prune_dead, idx)
        ok = ((feats >= low) & (feats <= high)).all(axis=1)
        ok &= _reference.enumerate_filter(space.num_ops, space.num_nodes, _space_args(space)[1],
                                          idx, connected_only, distinct)  # fmt: skip
        kept = np.union1d(kept, idx[ok])
        if kept.shape[0] >= size:
            break
    if kept.shape[0] > size:
        kept = np.sort(rng.choice(kept, size, replace=False))
    feats, scores = score_indices(space, t, coeffs, bias, prune_dead, kept)
    return Sample(kept, scores, feats[:, 2], drawn)


def plot_latency_params(
    path: str, sample: Sample, front_latency_s: np.ndarray, front_params: np.ndarray,
    title: str,
) -> None:  # fmt: skip
    """Sample as dots, the Pareto front as a step line (the least latency of any cell
    with at least that many parameters) with its points marked; PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    lat_us, front_us = sample.latency_s * 1e6, front_latency_s * 1e6
    positive = np.concatenate([lat_us, front_us])
    positive = positive[positive > 0]
    # Latencies span decades: log scale, where a 0 us cell (the empty one) has no place.
    log_y = positive.shape[0] > 0 and positive.max() / positive.min() > 20
    shown = lat_us > 0 if log_y else np.ones_like(lat_us, dtype=bool)
    few = sample.indices.shape[0] < 500  # a few cells: larger, solid dots
    ax.scatter(sample.params[shown], lat_us[shown], s=16 if few else 6,
               alpha=0.8 if few else 0.35, color="#1f77b4", zorder=4 if few else 2,
               linewidths=0, label=f"sample ({sample.indices.shape[0]:,} cells)")  # fmt: skip
    order = np.argsort(front_params, kind="stable")
    fp, fl = front_params[order], front_us[order]
    zero = fp[fl <= 0] if log_y else fp[:0]  # front points at 0 us: below a log scale
    fp, fl = fp[fl > 0] if log_y else fp, fl[fl > 0] if log_y else fl
    if fp.shape[0]:
        left = (
            float(zero[-1])
            if zero.shape[0]
            else min(float(fp[0]), float(sample.params.min(initial=fp[0])))
        )
        xs = np.insert(fp, 0, left)  # from the smallest cell shown to the first point
        ys = np.insert(fl, 0, fl[0])
        ax.step(xs, ys, where="pre", color="#d62728", lw=1.6,
                label=f"exact Pareto front ({front_params.shape[0]} points):\n"
                "least latency with at least that many parameters")  # fmt: skip
        ax.scatter(fp, fl, s=10, color="#d62728", zorder=3)
    if log_y:
        ax.set_yscale("log")
    if zero.shape[0]:  # mark them on the bottom edge
        ax.autoscale_view()
        ax.scatter(zero, np.full(zero.shape, ax.get_ylim()[0]), marker="v", s=40,
                   color="#d62728", clip_on=False, zorder=4,
                   label="front point at 0 µs (the empty cell), off the log scale")  # fmt: skip
    # Parameters span decades and include 0 (parameter-free cells): symlog, linear only
    # below the smallest non-zero count, with a tick at 0 and at each decade.
    params = np.concatenate([sample.params, front_params])
    nonzero = params[params > 0]
    if nonzero.shape[0] and nonzero.max() / nonzero.min() > 20:
        lt = float(nonzero.min())
        ax.set_xscale("symlog", linthresh=lt, linscale=0.25)
        decades = range(math.ceil(math.log10(lt)), math.floor(math.log10(nonzero.max())) + 1)
        ticks, labels = [10.0**k for k in decades], [f"$10^{{{k}}}$" for k in decades]
        if (params == 0).any():
            ticks, labels = [0.0, *ticks], ["0", *labels]
            ax.set_xlim(left=-0.3 * lt)  # 0 off the frame; nothing is negative
        ax.set_xticks(ticks, labels)
        ax.minorticks_off()
    ax.set_xlabel("parameters (count)")
    ax.set_ylabel("estimated latency (µs)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)


__all__ = ["Sample", "plot_latency_params", "sample_space", "score_indices"]
