"""Latency estimation: linear models over per-cell features, fit to measured latencies.

A :class:`LatencyEstimator` predicts the latency (seconds) of a cell as a linear model

    latency = sum_f weight_f * feature_f(cell) + bias

over one of seven named feature sets (``FEATURE_SETS``), from the seed's compute and
memory time over all edges (``"seed"``: weights ``alpha`` and ``beta``, 1.0 before
calibration, and ``bias``, 0.0) to per-(op, input layout) counts over the edges the
cell module actually runs and what its backward runs. The features themselves are pure
functions of the feature set, the op list, the per-op costs and the cells, in
:mod:`nas.latency_features` (whose docstring describes every set); this module holds
the model: weights in model units (features divided by the hardware rates for FLOPs
and bytes, raw counts otherwise), fitting, prediction and persistence. Every set but
``"seed"`` counts live edges only, which makes it non-additive over edges
(``additive`` is False): ``estimate_batch`` computes the features vectorised over the
batch, one step per edge.

For routing through a scoring kernel that sums per-op features over edges,
``feature_table(ops)`` ([K, F]) and ``coeffs()`` (weights [F], bias) expose the model
in raw units (FLOPs, bytes, counts): for ``"seed"`` the coefficients over (flops,
mem_bytes) are alpha / (GFLOPS * 1e9) and beta / (GB/s * 1e9), and
``estimate == feature_table[codes].sum(edges) @ weights + bias`` exactly (``additive``).
For the other sets ``edge_bounds`` gives an additive lower bound that ``top_k_exact``
scans before re-ranking the candidates with the full model.

Fitting (:meth:`LatencyEstimator.calibrate`) is ordinary least squares solved by
``numpy.linalg.lstsq`` on column-scaled features; fewer points than coefficients or a
rank-deficient design raise ``ValueError`` (naming the columns involved) and leave the
coefficients untouched. Choosing a feature set by cross-validation is
:mod:`nas.latency_fit`; the accuracy metrics (R^2, within +-10%, Kendall's tau, the
fastest-10% overlap) are here, beside the estimator's ``r_squared`` / ``metrics``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._io import write_json_atomic
from .costs import FEATURE_NAMES, HWProfile, OpCost, default_op_costs, op_costs_1d
from .latency_features import (
    CANON,
    FEATURE_SETS,
    LAYOUT_SETS,
    LAYOUTS,
    OP_LAUNCHES,
    OP_OUTPUT_T,
    CellWalk,
    add_scale,
    cell_walk,
    check_feature_set,
    count_ops,
    feature_columns,
    op_raw_table,
    rate_div,
    seed_time,
)
from .latency_features import cell_features as _cell_features
from .space import (
    Cell,
    OpType,
    SearchSpace,
    _check_int,
    _is_int,
    all_ops,  # noqa: F401  (importable from here before the split)
    as_op,
)

WEIGHTINGS: tuple[str, ...] = ("absolute", "relative")
Shape = tuple[int, int, int]  # (batch, patches, hidden): the cell input [B, N, D]


def _check_shape(shape: Sequence[int] | None) -> Shape | None:
    """``shape`` as (batch, patches, hidden), or ValueError; a float (16.5) is an
    error, never truncated."""
    if shape is None:
        return None
    ok = not isinstance(shape, (str, bytes)) and isinstance(shape, Sequence)
    ok = ok and len(shape) == 3 and all(_is_int(v) and v >= 1 for v in shape)
    if not ok:
        raise ValueError(f"shape must be (batch, patches, hidden) of positive ints, got {shape!r}")
    s = tuple(int(v) for v in shape)
    return s  # type: ignore[return-value]


@dataclass(frozen=True)
class CalibrationPoint:
    """A cell and its measured latency in seconds; ``shape`` (batch, patches, hidden) is
    the input it was measured on (None: the estimator's own cost table applies)."""

    cell: Cell
    latency: float
    shape: Shape | None = None

    def __post_init__(self) -> None:
        # np.asarray would silently parse a str ("1e-3") as a number: refuse it here
        v = self.latency
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"CalibrationPoint.latency must be a number (seconds), got {v!r}")


def r_squared(
    measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray
) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot, with a two-pass SS_tot (mean
    first, then squared deviations). Can be negative (worse than predicting the mean).

    Constant targets (all measured values equal, including a single point) make R^2
    undefined: the result is NaN, never a silent 1.0. measured, predicted: [n], n >= 1.
    """
    y = np.asarray(measured, dtype=np.float64).reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"measured has {y.size} values but predicted has {p.size}")
    if y.size == 0:
        raise ValueError("r_squared needs at least one point, got 0")
    if y.max() == y.min():  # constant targets (checked exactly: a rounded mean may not be)
        return float("nan")
    mean = y.mean()
    ss_tot = float(np.sum((y - mean) ** 2))
    ss_res = float(np.sum((y - p) ** 2))
    return 1.0 - ss_res / ss_tot


def accuracy_metrics(
    measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """R^2, fraction within +-10% (|pred - meas| <= 0.1 |meas|, nn-Meter's metric),
    mean absolute % error (as a fraction), the order a search sees (Kendall's tau,
    :func:`kendall_tau`; ``fastest10``, :func:`fastest_overlap` at 10%) and the point
    count. measured, predicted: [n]."""
    y = np.asarray(measured, dtype=np.float64).reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    r2 = r_squared(y, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(p - y) / np.abs(y)
    return {
        "r2": r2,
        "within_10pct": float(np.mean(rel <= 0.1)),
        "mape": float(np.mean(rel)),
        "kendall_tau": kendall_tau(y, p),
        "fastest10": fastest_overlap(y, p, 0.1),
        "n": int(y.size),
    }


def kendall_tau(
    measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray
) -> float:
    """Kendall's tau-b rank correlation of two [n] sequences (ties counted as neither
    concordant nor discordant); NaN when either is constant or n < 2. O(n^2) memory:
    meant for calibration-sized n (hundreds)."""
    y = np.asarray(measured, dtype=np.float64).reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"measured has {y.size} values but predicted has {p.size}")
    iu = np.triu_indices(y.size, 1)
    dy = np.sign(y[:, None] - y[None, :])[iu]
    dp = np.sign(p[:, None] - p[None, :])[iu]
    den = math.sqrt(float(np.count_nonzero(dy)) * float(np.count_nonzero(dp)))
    return float(np.sum(dy * dp) / den) if den > 0 else float("nan")


def fastest_overlap(
    measured: Sequence[float] | np.ndarray,
    predicted: Sequence[float] | np.ndarray,
    fraction: float = 0.1,
) -> float:
    """The fraction of the measured fastest ``fraction`` of cells (k = ceil(fraction *
    n) of them, at least 1) that are also among the k predicted fastest: 1.0 when a
    search would keep exactly the right cells. measured, predicted: [n], n >= 1."""
    y = np.asarray(measured, dtype=np.float64).reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need two equal-length non-empty sequences, got {y.size}, {p.size}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    k = max(1, math.ceil(fraction * y.size - 1e-9))
    fast_y = set(np.argsort(y, kind="stable")[:k].tolist())
    fast_p = set(np.argsort(p, kind="stable")[:k].tolist())
    return len(fast_y & fast_p) / k


def _divide(raw: np.ndarray, div: np.ndarray) -> np.ndarray:
    # raw [..., F] / div [F], with a 0 divisor (rate <= 0) giving a 0 term.
    safe = np.where(div > 0, div, 1.0)
    return np.where(div > 0, raw / safe, 0.0)


class LatencyEstimator:
    """A linear latency model for cells on a hardware profile (see the module docstring).

    Args:
        hw: the device profile; its rates set the units of compute/memory time.
        op_costs: per-op FLOPs and bytes; default: 1-D costs at ``shape`` when given,
            else the seed's 2-D table (``nas.default_op_costs()``).
        features: one of ``FEATURE_SETS``.
        ops: the ops the count columns cover (every set but ``"seed"``); default all 8.
        shape: (batch, patches, hidden) the estimator predicts for.
    """

    def __init__(
        self,
        hw: HWProfile,
        op_costs: Mapping[OpType, OpCost] | None = None,
        *,
        features: str = "seed",
        ops: Sequence[OpType | str] | None = None,
        shape: Sequence[int] | None = None,
    ) -> None:
        self.hw = hw
        self.features = check_feature_set(features)
        self.shape = _check_shape(shape)
        if op_costs is None:
            op_costs = (
                default_op_costs()
                if self.shape is None
                else op_costs_1d(self.shape[1], self.shape[2], batch=self.shape[0])
            )
        missing = [op.value for op in CANON if op not in op_costs]
        if missing:
            raise ValueError(f"op_costs has no entry for ops {missing}")
        self.op_costs: dict[OpType, OpCost] = {op: op_costs[op] for op in CANON}
        self.ops: list[OpType] = [as_op(op) for op in (ops if ops is not None else CANON)]
        self._count_ops = count_ops(self.ops)
        self._div = np.array([self._divisor(c) for c in self.columns], dtype=np.float64)
        self._weights, self.bias = self._initial_weights(), 0.0
        self.calibrated = False

    # -- model structure ------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Names of the model's features, in weight order (raw units: see feature_table)."""
        return feature_columns(self.features, self.ops)

    @property
    def additive(self) -> bool:
        """True when the estimate is a plain sum of per-op features over ALL edges
        (``"seed"``), so a scoring kernel with ``feature_table``/``coeffs`` reproduces it."""
        return self.features == "seed"

    @property
    def live_edges_only(self) -> bool:
        return self.features != "seed"

    def _divisor(self, column: str) -> float:
        # Model feature = raw / divisor: compute/memory time for flops/bytes, raw counts else.
        if column == "flops":
            return rate_div(self.hw.flops_throughput_gflops)
        if column == "mem_bytes":
            return rate_div(self.hw.mem_bandwidth_gbs)
        return 1.0

    def _initial_weights(self) -> np.ndarray:
        w = []
        for col in self.columns:
            if col in ("flops", "mem_bytes"):
                w.append(1.0 if self.features == "seed" else 0.0)
            elif col in ("launches", "adds_same", "adds_mixed", "g_accum") or col.startswith(
                ("bw_", "gw_", "gx_")
            ):
                w.append(0.0)
            elif self.features == "layout_scaled":  # the column is already a seed time
                w.append(1.0)
            else:
                w.append(seed_time(as_op(col[2:].split("@")[0]), self.op_costs, self.hw))
        if self.features == "rich":  # start as the seed model over live edges
            w = [0.0] * (len(w) - 2) + [1.0, 1.0]
        return np.asarray(w, dtype=np.float64)

    @property
    def weights(self) -> np.ndarray:
        """The model's weights [F] over ``columns`` in model units (seconds per count,
        per launch; alpha and beta for compute/memory time)."""
        return self._weights.copy()

    @property
    def alpha(self) -> float:
        """Weight of compute time (``"seed"``/``"rich"``); NaN for the other sets."""
        cols = self.columns
        return float(self._weights[cols.index("flops")]) if "flops" in cols else float("nan")

    @property
    def beta(self) -> float:
        """Weight of memory time (``"seed"``/``"rich"``); NaN for the other sets."""
        cols = self.columns
        return (
            float(self._weights[cols.index("mem_bytes")]) if "mem_bytes" in cols else float("nan")
        )

    def feature_table(self, ops: Sequence[OpType | str] | None = None) -> np.ndarray:
        """Per-op features [K, F] (raw units, ``columns`` order) for ``ops`` (default
        the estimator's ops): what a scoring kernel sums over a cell's edges."""
        table = op_raw_table(self.features, self.ops, self.op_costs, self.hw)
        ops = [as_op(op) for op in (ops if ops is not None else self.ops)]
        return table[[CANON.index(op) for op in ops]]

    def coeffs(self) -> tuple[np.ndarray, float]:
        """(weights [F] over ``feature_table`` columns in raw units, bias in seconds);
        for ``"seed"``: (alpha / (GFLOPS*1e9), beta / (GB/s*1e9)). A rate <= 0 gives 0."""
        safe = np.where(self._div > 0, self._div, 1.0)
        return np.where(self._div > 0, self._weights / safe, 0.0), float(self.bias)

    def edge_bounds(self, ops: Sequence[OpType | str] | None = None) -> tuple[np.ndarray, float]:
        """(per-op bounds [K] over ``ops`` (default the estimator's), constant) such that
        for EVERY cell of those ops ``estimate(cell) >= constant + sum over its edges of
        bounds[op]``, with equality for an additive (``"seed"``) model.

        For the other sets an edge's contribution depends on the cell around it (live or
        not, its input's layout, whether it is the first input of its node, whether a
        gradient reaches it); each bound is the least that contribution can be: 0 (a
        dead edge) or the sum, over those independent choices, of the smallest option.
        This is what lets an additive scan (``top_k_exact``) keep every cell that can
        still be among the best under the full model."""
        ops = [as_op(op) for op in (ops if ops is not None else self.ops)]
        w, bias = self.coeffs()
        if self.additive:
            return self.feature_table(ops) @ w, bias
        col = {c: k for k, c in enumerate(self.columns)}

        def wt(name: str, raw: float = 1.0) -> float:
            return float(w[col[name]]) * raw if name in col else 0.0

        scaled = self.features == "layout_scaled"
        add_unit = add_scale(self.op_costs, self.hw) if scaled else 1.0
        bounds = np.zeros(len(ops))
        for k, op in enumerate(ops):
            if op == OpType.ZERO:
                continue
            v = op.value
            base = wt("launches", OP_LAUNCHES[op])  # its own kernels
            if self.features in LAYOUT_SETS:
                unit = seed_time(op, self.op_costs, self.hw) if scaled else 1.0
                # forward on either layout, with (or without) its input gradient on it
                base += min(
                    wt(f"n_{v}@{lay}", unit) + min(0.0, wt(f"gx_{v}@{lay}")) for lay in LAYOUTS
                )
                adds = [wt("adds_same", add_unit), wt("adds_mixed", add_unit)]
                choices = [
                    [0.0] + [a + wt("launches") for a in adds],  # first input: no add
                    [0.0, wt(f"bw_{v}")],
                    [0.0, wt(f"gw_{v}")],
                    [0.0, wt("g_accum")],
                ]
            else:  # lut, rich: a per-op cost, plus one add unless it is a node's first input
                c = self.op_costs[op]
                base += wt(f"n_{v}") + wt("flops", c.flops) + wt("mem_bytes", c.mem_bytes)
                choices = [[0.0, wt("launches")]]
            bounds[k] = min(0.0, base + sum(min(opts) for opts in choices))
        # a cell whose output receives nothing runs one zeros_like (a launch)
        return bounds, bias + min(0.0, wt("launches"))

    # -- features ---------------------------------------------------------------
    def _costs_for(self, shape: Shape | None) -> Mapping[OpType, OpCost]:
        if shape is None or shape == self.shape:
            return self.op_costs
        return op_costs_1d(shape[1], shape[2], batch=shape[0])

    def cell_features(
        self,
        cells: Sequence[Cell] | torch.Tensor,
        space: SearchSpace | None = None,
        shape: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Raw features [n, F] (``columns`` order) of cells given as a list of Cells, or
        with ``space`` as cell indices Tensor[n] or op codes Tensor[n, num_edges]."""
        costs = self._costs_for(_check_shape(shape))
        return _cell_features(self.features, self.ops, costs, self.hw, cells, space)

    def _model_features(self, raw: np.ndarray) -> np.ndarray:
        return _divide(raw, self._div)

    def _points_features(self, points: Sequence[CalibrationPoint]) -> tuple[np.ndarray, np.ndarray]:
        """Model features [n, F] and targets [n] of calibration points (grouped by shape)."""
        points = list(points)
        y = np.asarray([p.latency for p in points], dtype=np.float64)
        x = np.zeros((len(points), len(self.columns)), dtype=np.float64)
        by_shape: dict[Shape | None, list[int]] = {}
        for k, p in enumerate(points):
            by_shape.setdefault(_check_shape(p.shape), []).append(k)
        for shp, idx in by_shape.items():
            x[idx] = self.cell_features([points[k].cell for k in idx], shape=shp)
        return self._model_features(x), y

    # -- prediction ----------------------------------------------------------------
    def estimate_batch(
        self,
        cells: Sequence[Cell] | torch.Tensor,
        space: SearchSpace | None = None,
        shape: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Predicted latencies [n] float64 (seconds) of cells given as a list of Cells,
        or with ``space`` as indices Tensor[n] (decoded by the native ``decode_cells``)
        or op codes Tensor[n, num_edges]. Vectorised over the batch."""
        x = self._model_features(self.cell_features(cells, space, shape))
        return x @ self._weights + self.bias

    def estimate_range(
        self, space: SearchSpace, start: int = 0, count: int | None = None
    ) -> np.ndarray:
        """Predicted latencies [count] float64 of the cells [start, start + count) of
        ``space`` in index order. An additive (``"seed"``) model runs on the native
        scoring kernel (``nas.score_cells``, no cell is materialised); the others decode
        the indices (native ``decode_cells``) and use :meth:`estimate_batch`."""
        from .enumerate import score_cells

        total = space.num_cells()
        start = _check_int("start", start, 0)
        if start > total:
            raise ValueError(f"start is {start}, past the space's {total} cells")
        count = total - start if count is None else _check_int("count", count, 0)
        if start + count > total:
            raise ValueError(
                f"start + count = {start} + {count} = {start + count} is past the space's "
                f"{total} cells"
            )
        if self.additive:
            table = self.feature_table(space.ops)
            weights, bias = self.coeffs()
            _, scores = score_cells(space, table, weights, bias=bias, start=start, count=count)
            return scores.numpy()
        if start + count > 2**63:
            raise ValueError(
                f"cells [{start}, {start + count}) have indices past int64; the "
                f"{self.features!r} model decodes indices (only additive models do not)"
            )
        indices = torch.arange(start, start + count, dtype=torch.int64)
        return self.estimate_batch(indices, space)

    def estimate(self, cell: Cell, shape: Sequence[int] | None = None) -> float:
        """Predicted latency of one cell, in seconds."""
        x = self._model_features(self.cell_features([cell], shape=shape))[0]
        total = 0.0
        for w, v in zip(self._weights.tolist(), x.tolist(), strict=True):
            total += w * v
        return total + self.bias

    latency_estimate = estimate

    def compute_time(self, cell: Cell) -> float:
        """sum(FLOPs) over the cell's edges / (GFLOPS * 1e9); 0 when the rate is <= 0."""
        flops = sum(self.op_costs[as_op(e.op)].flops for e in cell.edges)
        d = rate_div(self.hw.flops_throughput_gflops)
        return flops / d if d > 0 else 0.0

    def memory_time(self, cell: Cell) -> float:
        """sum(bytes) over the cell's edges / (GB/s * 1e9); 0 when the rate is <= 0."""
        mem = sum(self.op_costs[as_op(e.op)].mem_bytes for e in cell.edges)
        d = rate_div(self.hw.mem_bandwidth_gbs)
        return mem / d if d > 0 else 0.0

    # -- fitting ---------------------------------------------------------------------
    def calibrate(
        self,
        points: Sequence[CalibrationPoint],
        weighting: str = "absolute",
        ridge: float = 0.0,
    ) -> LatencyEstimator:
        """Fit weights and bias by least squares on rows [features..., 1].

        ``weighting="absolute"`` (the seed's): ordinary least squares on latencies.
        ``"relative"``: each row divided by its latency, i.e. least squares on relative
        errors (pred / latency - 1), the quantity the +-10% metric counts; otherwise
        the largest cells dominate the fit and small ones get large relative errors.
        Latencies must then be > 0.

        ``ridge`` > 0 adds ``ridge * |w|^2`` over the weights of the column-scaled design
        (each column divided by its largest magnitude; the bias is not penalised): a
        column that is zero for every point then gets weight 0 and near-collinear columns
        share their effect, instead of raising. 1e-6 (what ``nas calibrate`` uses) moves
        a well-posed fit by far less than the timing noise.

        Raises ValueError for fewer points than coefficients, non-finite latencies, or a
        rank-deficient design (the message names the columns that are linearly
        dependent); the coefficients are only replaced on success. Returns self.
        """
        points = list(points)
        n_coef = len(self.columns) + 1
        if len(points) < n_coef:
            raise ValueError(
                f"calibrating {n_coef} coefficients ({', '.join(self.columns)}, bias) needs at "
                f"least {n_coef} points, got {len(points)}"
            )
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        x, y = self._points_features(points)
        if not np.all(np.isfinite(y)):
            raise ValueError("calibration latencies must be finite")
        design = np.concatenate([x, np.ones((len(y), 1))], axis=1)
        if weighting == "relative":
            if np.any(y <= 0):
                bad = float(y[y <= 0][0])
                raise ValueError(f"weighting='relative' needs latencies > 0, got {bad}")
            design, y = design / y[:, None], np.ones_like(y)
        names = self.columns + ["bias"]
        scale = np.abs(design).max(axis=0)
        if not (math.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
        if ridge > 0:  # columns zero for every point are left out: weight exactly 0
            used = np.flatnonzero(scale > 0)
            sub = design[:, used] / scale[used]
            pen = np.sqrt(ridge) * np.eye(len(used))
            pen[:, used == n_coef - 1] = 0.0  # no penalty on the bias
            sol = np.linalg.lstsq(
                np.concatenate([sub, pen]), np.concatenate([y, np.zeros(len(used))]), rcond=None
            )[0]
            coef = np.zeros(n_coef)
            coef[used] = sol / scale[used]
            self._set_solution(coef)
            return self
        zero_cols = [names[k] for k in np.flatnonzero(scale == 0)]
        if zero_cols:
            raise ValueError(
                f"rank-deficient design: columns {zero_cols} are zero for every point "
                "(an op that never occurs, or a hardware rate <= 0)"
            )
        scaled = design / scale
        sol, _, rank, sv = np.linalg.lstsq(scaled, y, rcond=None)
        tol = sv[0] * 1e-9
        if rank < n_coef or sv[-1] <= tol:
            _, _, vt = np.linalg.svd(scaled, full_matrices=False)
            null = vt[-1]
            involved = [names[k] for k in np.flatnonzero(np.abs(null) > 1e-6)]
            hint = (
                "FLOPs and bytes are multiples of the op counts at a single shape: use "
                "features='lut', or points at several shapes"
                if "flops" in self.columns and self.features != "seed"
                else "launches is fixed by the op counts when no cell has a dead node; "
                "add cells or drop the feature set"
                if "launches" in self.columns
                else "the points do not vary these features independently"
            )
            raise ValueError(
                f"rank-deficient design: {len(names)} coefficients but the columns {involved} "
                f"are linearly dependent on these points ({hint})"
            )
        self._set_solution(sol / scale)
        return self

    def _set_solution(self, coef: np.ndarray) -> None:
        self._weights = coef[:-1].copy()
        self.bias = float(coef[-1])
        self.calibrated = True

    def predict_points(self, points: Sequence[CalibrationPoint]) -> np.ndarray:
        """Predictions [n] for the points' cells (each at its own shape)."""
        x, _ = self._points_features(points)
        return x @ self._weights + self.bias

    def r_squared(self, points: Sequence[CalibrationPoint]) -> float:
        """R^2 of this estimator on ``points`` (see :func:`r_squared`)."""
        points = list(points)
        return r_squared([p.latency for p in points], self.predict_points(points))

    def metrics(self, points: Sequence[CalibrationPoint]) -> dict[str, float]:
        """:func:`accuracy_metrics` of this estimator on ``points``."""
        points = list(points)
        return accuracy_metrics([p.latency for p in points], self.predict_points(points))

    # -- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "nas.latency/1",
            "hw": {
                "name": self.hw.name,
                "flops_throughput_gflops": self.hw.flops_throughput_gflops,
                "mem_bandwidth_gbs": self.hw.mem_bandwidth_gbs,
            },
            "features": self.features,
            "ops": [op.value for op in self.ops],
            "shape": list(self.shape) if self.shape is not None else None,
            "op_costs": {op.value: [c.flops, c.mem_bytes] for op, c in self.op_costs.items()},
            "columns": self.columns,
            "weights": self._weights.tolist(),
            "bias": self.bias,
            "calibrated": self.calibrated,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LatencyEstimator:
        """The estimator saved by :meth:`to_dict`, or the best one of a ``nas calibrate``
        JSON document (its ``"estimator"`` entry)."""
        if "estimator" in doc and "weights" not in doc:
            doc = doc["estimator"]
        try:
            hw = HWProfile(
                str(doc["hw"]["name"]),
                float(doc["hw"]["flops_throughput_gflops"]),
                float(doc["hw"]["mem_bandwidth_gbs"]),
            )
            costs = {as_op(k): OpCost(float(v[0]), float(v[1])) for k, v in doc["op_costs"].items()}
            est = cls(hw, costs, features=doc["features"], ops=doc["ops"], shape=doc["shape"])
            weights = np.asarray(doc["weights"], dtype=np.float64)
            bias = float(doc["bias"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a latency estimator document: missing or bad {exc}") from None
        if list(doc.get("columns", est.columns)) != est.columns or weights.shape != (
            len(est.columns),
        ):
            raise ValueError(
                f"estimator document has weights for {doc.get('columns')}, expected {est.columns}"
            )
        est._weights, est.bias = weights, bias
        est.calibrated = bool(doc.get("calibrated", True))
        return est

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON (to a temporary name, then renamed)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatencyEstimator:
        """Load an estimator JSON, or the best estimator of a ``nas calibrate`` JSON."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __repr__(self) -> str:
        w = ", ".join(f"{c}={v:.4g}" for c, v in zip(self.columns, self._weights, strict=True))
        return (
            f"LatencyEstimator({self.hw.name!r}, features={self.features!r}, {w}, "
            f"bias={self.bias:.4g})"
        )


def latency_coeffs(
    hw: HWProfile, estimator: LatencyEstimator | None = None
) -> tuple[np.ndarray, float]:
    """(coeffs [3], bias) over ``op_feature_table``'s columns (flops, mem_bytes, params)
    that give an additive latency model's estimate in seconds: by default the seed's
    uncalibrated model on ``hw``, flops / (GFLOP/s * 1e9) + bytes / (GB/s * 1e9).

    ``estimator``: a calibrated ``LatencyEstimator`` with the additive ``"seed"`` feature
    set (its coefficients are used; the cost table passed to the kernels must then be
    the one it was calibrated with).
    """
    est = estimator if estimator is not None else LatencyEstimator(hw)
    if not est.additive:
        raise ValueError(
            f"estimator with feature set {est.features!r} is not additive over edges; "
            "only 'seed' estimators can drive the scoring kernels"
        )
    weights, bias = est.coeffs()
    coeffs = np.zeros(len(FEATURE_NAMES))
    for col, w in zip(est.columns, weights.tolist(), strict=True):
        coeffs[FEATURE_NAMES.index(col)] = w
    return coeffs, bias


@dataclass(frozen=True)
class ExactTopK:
    """The k fastest cells under an estimator's full model, fastest first (ties to the
    lower index). indices Tensor[n] int64; scores Tensor[n] float64 (the estimate,
    seconds); features Tensor[n, F] (the constraint table's columns); ``reranked``:
    how many candidates the full model scored (0 for an additive model, whose scan
    score is exact); ``rounds``: additive scans run (each keeps more candidates)."""

    indices: torch.Tensor
    scores: torch.Tensor
    features: torch.Tensor
    reranked: int
    rounds: int


def top_k_exact(
    space: SearchSpace,
    estimator: LatencyEstimator,
    k: int,
    op_features: np.ndarray,
    constraints: Mapping[int, tuple[float | None, float | None]] | None = None,
    *,
    progress: bool = False,
    connected_only: bool = False,
    distinct: bool = False,
) -> ExactTopK:
    """The k cells of ``space`` with the lowest ``estimator`` estimate among those that
    satisfy ``constraints`` (on ``op_features`` [K, F] columns, as ``top_k_cells``) and
    the cell filters (``connected_only``, ``distinct``: nas.enumerate), exactly, by an
    exhaustive native scan.

    An additive model is scanned with its own per-op costs. Any other is scanned with
    :meth:`LatencyEstimator.edge_bounds`, an additive LOWER bound of the full estimate
    of every cell: the scan keeps the k' cells with the lowest bound, the full model
    re-ranks them, and the answer is proven once the k'-th bound exceeds the k-th full
    estimate (no cell left out can then beat it); otherwise k' grows 4x and the scan
    runs again, up to ``nas.enumerate.MAX_TOP_K`` candidates."""
    from .enumerate import MAX_TOP_K, top_k_cells

    k = _check_int("k", k, 1)
    table = np.asarray(op_features, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != space.num_ops:
        raise ValueError(f"op_features must be [num_ops={space.num_ops}, F], got {table.shape}")
    bounds, const = estimator.edge_bounds(space.ops)
    scan_table = np.concatenate([table, bounds[:, None]], axis=1)  # last column: the score
    coeffs = np.zeros(scan_table.shape[1])
    coeffs[-1] = 1.0
    keep = k if estimator.additive else min(MAX_TOP_K, max(4 * k, 256))
    rounds = 0
    while True:
        rounds += 1
        res = top_k_cells(
            space, scan_table, coeffs, max(k, keep), constraints, bias=const, progress=progress,
            connected_only=connected_only, distinct=distinct,
        )  # fmt: skip
        idx = torch.as_tensor(res.indices, dtype=torch.int64)
        feats = torch.as_tensor(res.features)[:, :-1]
        if estimator.additive:
            return ExactTopK(idx, torch.as_tensor(res.scores), feats, 0, rounds)
        full = estimator.estimate_batch(idx, space) if len(idx) else np.zeros(0)
        order = np.lexsort((idx.numpy(), full))
        bound = res.scores.numpy()
        if len(idx) < keep:
            break  # every qualifying cell was a candidate
        kth = full[order[k - 1]]
        # rounding: the bound sums its terms in another order than the estimate
        if bound[-1] > kth + 1e-6 * max(abs(kth), abs(bound[-1])):
            break
        if keep >= MAX_TOP_K:
            raise ValueError(
                f"could not prove the top {k} of the {estimator.features!r} model with "
                f"{keep:,} candidates (the additive bound is too loose for this model); "
                "lower k or tighten the constraints"
            )
        keep = min(MAX_TOP_K, 4 * keep)
    top = torch.from_numpy(order[:k])
    return ExactTopK(idx[top], torch.from_numpy(full[order[:k]]), feats[top], len(idx), rounds)


def load_estimator(path: str | os.PathLike[str]) -> LatencyEstimator:
    """:meth:`LatencyEstimator.load`."""
    return LatencyEstimator.load(path)


def expected_latency(
    alpha: torch.Tensor, space: SearchSpace, estimator: LatencyEstimator
) -> torch.Tensor:
    """Differentiable expected latency of a supernet (ProxylessNAS-style penalty):
    sum over edges of softmax(alpha_e) . latency_per_op + bias, where latency_per_op
    [K] = feature_table(space.ops) @ coeffs()[0], the estimator's own coefficients.

    In a supernet every mixed edge runs, so every edge and node counts as live (and
    runs backward); the node term (-1 launch, or -1 same-layout add, per non-input
    node) is added as a constant, and ``"layout"`` models average each op's two input
    layouts (``feature_table``). alpha: Tensor[num_edges, num_ops] or the flat seed layout
    [num_edges * num_ops]; returns a scalar Tensor (alpha's dtype and device).
    """
    e, k = space.num_edges, space.num_ops
    if (
        alpha.numel() != e * k
        or alpha.dim() not in (1, 2)
        or (alpha.dim() == 2 and alpha.shape != (e, k))
    ):
        raise ValueError(
            f"alpha of shape {tuple(alpha.shape)} does not match "
            f"num_edges({e}) * num_ops({k}) = {e * k}"
        )
    if not alpha.is_floating_point():
        raise ValueError(f"alpha must be a floating tensor, got {alpha.dtype}")
    w, bias = estimator.coeffs()
    per_op = estimator.feature_table(space.ops) @ w  # [K]
    const = bias
    for col in ("launches", "adds_same"):
        if col in estimator.columns:
            # the raw unit of one add: skip_connect's row (no kernel of its own, one add)
            unit = estimator.feature_table([OpType.SKIP_CONNECT])[0, estimator.columns.index(col)]
            const -= (space.num_nodes - 1) * unit * w[estimator.columns.index(col)]
    lat = torch.as_tensor(per_op, dtype=alpha.dtype, device=alpha.device)
    probs = torch.softmax(alpha.reshape(e, k), dim=-1)
    return (probs * lat).sum() + const


__all__ = [
    "FEATURE_SETS",
    "LAYOUTS",
    "OP_LAUNCHES",
    "OP_OUTPUT_T",
    "WEIGHTINGS",
    "CalibrationPoint",
    "CellWalk",
    "LatencyEstimator",
    "accuracy_metrics",
    "cell_walk",
    "ExactTopK",
    "expected_latency",
    "fastest_overlap",
    "kendall_tau",
    "latency_coeffs",
    "load_estimator",
    "r_squared",
    "top_k_exact",
    "write_json_atomic",
]
