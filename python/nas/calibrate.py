"""Measured calibration: time real cell modules on a device and fit latency models.

:func:`measure_cells` times each cell as the module the signal models run
(:class:`nas.signal_ops.CellModule` on a [batch, patches, hidden] tensor). How it times
is one :class:`TimingProtocol`; the machines this runs on are shared and noisy, so the
protocol is built against drift and against what the measured process itself does:

* the thread count is fixed (``torch.set_num_threads(threads)``, restored after) and
  recorded;
* freed memory stays in the process (``allocator="keep"``, glibc: no heap trimming, a
  fixed 32 MiB mmap threshold). With glibc's defaults, a cell timed after other cells
  page-faults on its own outputs: measured on the 2-core CPU, 430-1,100 minor faults
  per call of a [16, 64, 128] cell (0 with "keep"), 8-18% more time, and a cell's time
  then depends on which cells ran before it and on the process's history (the same
  cells timed again in another random order agreed within +-10% for 1-35% of cells;
  with "keep" 98-100%; ``bench/latency_probe.py``, bench/RESULTS.md). A deployed model
  does not pay this: it reuses the same buffers call after call. This is process-wide
  and stays after the measurement (glibc cannot turn its dynamic threshold back on);
  "system" leaves the allocator alone;
* every module is warmed up first; each timed block is preceded by ``warm_calls``
  untimed calls of the same cell (1: what ran before no longer leaks into its time;
  measured, the minimum's agreement between two random orders went 95-98% -> 99.5%), and
  repeats the cell ``number`` times so that one block lasts at least ``min_block_s``
  (0.5 ms: timer jitter, ~0.1 us, is then negligible, yet blocks are short enough that
  many of them run between other processes' time slices); the per-call time of a
  block is block time / number;
* cells are interleaved in ``rounds``: each round times every cell once, in a fresh
  random order, so a slow spell of the machine hits all cells alike instead of the
  few that happened to run then;
* the latency of a cell is a robust statistic of its rounds: the minimum by default
  (interference only ever adds time), or a low percentile (``"p10"``) or median;
* on CUDA, blocks are timed with CUDA events after a synchronize (written, but not
  yet run on a GPU).

:func:`repeatability` compares two measurements of the same cells: the fraction that
agree within +-10%, the floor no model can beat. :func:`run_calibration` is the
``nas calibrate`` command: sample cells, measure twice, fit every feature set on a
training split, report held-out R^2 / within +-10% / MAPE
(:func:`calibration_document`), and write the points (CSV), the coefficients and
metrics (JSON) and a predicted-vs-measured plot (PNG) (:func:`write_calibration`).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import dataclasses
import datetime as _dt
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_path, check_writable_dir, write_json_atomic
from .costs import HWProfile, cpu_profile, h200, hw_profile
from .latency import (
    FEATURE_SETS,
    WEIGHTINGS,
    CalibrationPoint,
    LatencyEstimator,
    _check_shape,
    accuracy_metrics,
)
from .latency_fit import FOLDS, FitSpec, fit_models
from .signal_ops import CellModule
from .space import Cell, OpType, SearchSpace, _check_int, format_cell

DEFAULT_SHAPE: tuple[int, int, int] = (16, 64, 128)
MODES = ("forward", "train")
TIMERS = ("wall", "thread")
REPEATS = ("interleaved", "sequential", "none")
ALLOCATORS = ("keep", "system")
_MAX_NUMBER = 100_000
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_KEEP_TRIM, _KEEP_MMAP = 1 << 30, 32 << 20  # 32 MiB: glibc's largest mmap threshold


def _statistic(times: np.ndarray, statistic: str) -> np.ndarray:
    """times [n, rounds] -> [n] by ``statistic``: "min", "median" or "p<q>" (0-100)."""
    if statistic == "min":
        return times.min(axis=1)
    if statistic == "median":
        return np.median(times, axis=1)
    if statistic.startswith("p"):
        try:
            q = float(statistic[1:])
        except ValueError:
            q = -1.0
        if 0.0 <= q <= 100.0:
            return np.percentile(times, q, axis=1)
    raise ValueError(
        f'statistic must be "min", "median" or "p<q>" with 0 <= q <= 100, got {statistic!r}'
    )


@dataclass(frozen=True)
class TimingProtocol:
    """How :func:`time_cells` times cells (the module docstring says why each is so):
    ``rounds`` interleaved rounds, ``warmup`` calls of every cell first, ``warm_calls``
    untimed calls right before each timed block, blocks of at least ``min_block_s``
    seconds, ``threads`` torch threads, the per-cell ``statistic`` over rounds ("min",
    "median", "p<q>"), the CPU ``timer`` ("wall": ``time.perf_counter``; "thread":
    ``time.thread_time``, the calling thread's CPU time, needs ``threads=1``; CUDA always
    uses events) and the ``allocator`` ("keep" or "system"). Checked on construction."""

    rounds: int = 40
    warmup: int = 3
    warm_calls: int = 1
    min_block_s: float = 5e-4
    threads: int = 1
    statistic: str = "min"
    timer: str = "wall"
    allocator: str = "keep"

    def __post_init__(self) -> None:
        _check_int("rounds", self.rounds, 1)
        _check_int("warmup", self.warmup, 0)
        _check_int("warm_calls", self.warm_calls, 0)
        _check_int("threads", self.threads, 1)
        b = self.min_block_s
        if isinstance(b, bool) or not isinstance(b, (int, float)):
            raise ValueError(f"min_block_s must be a number of seconds, got {b!r}")
        if not (math.isfinite(b) and b >= 0):
            raise ValueError(f"min_block_s must be finite and >= 0, got {b!r}")
        _statistic(np.zeros((1, 1)), self.statistic)
        if self.timer not in TIMERS:
            raise ValueError(f"timer must be one of {TIMERS}, got {self.timer!r}")
        if self.timer == "thread" and self.threads != 1:
            raise ValueError(
                f'timer "thread" counts one thread\'s CPU time, so it needs threads=1, '
                f"got {self.threads}"
            )
        if self.allocator not in ALLOCATORS:
            raise ValueError(f"allocator must be one of {ALLOCATORS}, got {self.allocator!r}")

    def with_(self, **fields: Any) -> TimingProtocol:
        """A copy with ``fields`` replaced (checked again)."""
        return dataclasses.replace(self, **fields)

    def check_device(self, dev: torch.device) -> None:
        if self.timer == "thread" and dev.type != "cpu":
            raise ValueError(f'timer "thread" is for CPU devices; {dev} is timed with events')


def _protocol(protocol: TimingProtocol | None, fields: dict[str, Any]) -> TimingProtocol:
    """``protocol`` (default: TimingProtocol()) with keyword ``fields`` replaced."""
    if protocol is not None and not isinstance(protocol, TimingProtocol):
        raise ValueError(f"protocol must be a TimingProtocol, got {protocol!r}")
    return (protocol or TimingProtocol()).with_(**fields)


def _check_measure(shape: Sequence[int], mode: str) -> tuple[int, int, int]:
    s = _check_shape(shape)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return s  # type: ignore[return-value]


def _as_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu or cuda[:N], got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {dev} requested but torch.cuda.is_available() is False")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], got {dev}")
    return dev


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process (no heap trimming, a fixed 32 MiB mmap
    threshold), so that tensors freed and allocated again call after call do not
    page-fault; process-wide and lasting. False (and nothing changed) where the C
    library has no ``mallopt`` (not glibc) or refuses the settings."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM)) and bool(
        mallopt(_M_MMAP_THRESHOLD, _KEEP_MMAP)
    )


def _allocator(protocol: TimingProtocol, dev: torch.device) -> str:
    """Apply the protocol's allocator setting; returns what the document records."""
    if protocol.allocator == "system":
        return "system"
    if dev.type != "cpu":  # device memory comes from torch's caching allocator
        return "keep (CPU only; the device's caching allocator)"
    if keep_freed_memory():
        return "keep (glibc mallopt: no trim, mmap threshold 32 MiB)"
    return "system (no glibc mallopt on this platform)"


def _make_step(module: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    if mode == "forward":
        module.eval()

        def step() -> None:
            with torch.no_grad():
                module(x)

        return step
    module.train()

    def train_step() -> None:
        module.zero_grad(set_to_none=True)
        loss = module(x).sum()
        if loss.requires_grad:  # a cell whose output is all-zero has nothing to train
            loss.backward()

    return train_step


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def time_cells(
    cells: Sequence[Cell],
    device: str | torch.device = "cpu",
    shape: Sequence[int] = DEFAULT_SHAPE,
    mode: str = "forward",
    protocol: TimingProtocol | None = None,
    *,
    seed: int = 0,
    clock: Callable[[], float] | None = None,
    on_round: Callable[[], None] | None = None,
    **fields: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Time every cell in interleaved rounds (the protocol of the module docstring:
    ``protocol``, default :class:`TimingProtocol()`, with any of its ``fields`` given as
    keywords replaced, e.g. ``rounds=10``).

    Returns (times [len(cells), rounds] float64, seconds per call of each cell in each
    round; info: the protocol as run: threads, number per cell, device, shape, ...).
    ``clock`` overrides the CPU timer (for tests).
    """
    p = _protocol(protocol, fields)
    batch, patches, hidden = _check_measure(shape, mode)
    _check_int("seed", seed, 0)
    dev = _as_device(device)
    p.check_device(dev)
    if clock is None:
        clock = time.thread_time if p.timer == "thread" else time.perf_counter
    cells = list(cells)
    if not cells:
        raise ValueError("cells is empty: nothing to measure")
    use_cuda = dev.type == "cuda"
    allocator = _allocator(p, dev)
    with _threads(p.threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            modules = [CellModule(c, hidden).to(dev) for c in cells]
            x = torch.randn(batch, patches, hidden, device=dev)
        steps = [_make_step(m, x, mode) for m in modules]

        def sync() -> None:
            if use_cuda:
                torch.cuda.synchronize(dev)

        def run_block(step: Callable[[], None], number: int, warm: int) -> float:
            for _ in range(warm):
                step()
            if use_cuda:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                sync()
                start.record()
                for _ in range(number):
                    step()
                end.record()
                end.synchronize()
                return start.elapsed_time(end) / 1e3 / number
            t0 = clock()
            for _ in range(number):
                step()
            return (clock() - t0) / number

        # on cuda:N the events, their streams and synchronize must be device N's, not
        # the current device's (issue 13); written, not yet run on a GPU
        with torch.cuda.device(dev) if use_cuda else contextlib.nullcontext():
            for _ in range(p.warmup):
                for step in steps:
                    step()
            sync()
            # one probe call per cell sizes its block: >= min_block_s, at least one call
            numbers = []
            for step in steps:
                t = run_block(step, 1, p.warm_calls)
                n = 1 if t <= 0 else math.ceil(p.min_block_s / t)
                numbers.append(int(min(max(n, 1), _MAX_NUMBER)))
            rng = np.random.default_rng(seed)
            times = np.empty((len(cells), p.rounds), dtype=np.float64)
            for r in range(p.rounds):
                for i in rng.permutation(len(cells)).tolist():
                    times[i, r] = run_block(steps[i], numbers[i], p.warm_calls)
                if on_round is not None:
                    on_round()
        info = {
            "device": str(dev),
            "device_name": (
                torch.cuda.get_device_name(dev) if use_cuda else platform.processor() or "cpu"
            ),
            "shape": [batch, patches, hidden],
            "mode": mode,
            "threads": torch.get_num_threads(),
            "protocol": dataclasses.asdict(p),
            "allocator": allocator,
            "numbers": numbers,
            "timer": "cuda events"
            if use_cuda
            else ("time.thread_time" if p.timer == "thread" else "time.perf_counter"),
        }
    return times, info


def measure_cells(
    cells: Sequence[Cell],
    device: str | torch.device = "cpu",
    shape: Sequence[int] = DEFAULT_SHAPE,
    mode: str = "forward",
    protocol: TimingProtocol | None = None,
    *,
    seed: int = 0,
    clock: Callable[[], float] | None = None,
    **fields: Any,
) -> list[CalibrationPoint]:
    """Measure each cell's latency (seconds per call of CellModule(cell, hidden) on a
    [batch, patches, hidden] input; ``mode="train"`` times forward + backward) with
    ``protocol`` (fields replaceable by keyword, as :func:`time_cells`); returns one
    CalibrationPoint per cell, in order, each carrying ``shape``."""
    p = _protocol(protocol, fields)  # checked before any time is spent
    times, _ = time_cells(cells, device, shape, mode, p, seed=seed, clock=clock)
    lat = _statistic(times, p.statistic)
    shp = tuple(int(v) for v in shape)
    return [CalibrationPoint(c, float(t), shp) for c, t in zip(cells, lat.tolist(), strict=True)]  # type: ignore[arg-type]


def repeatability(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """How well a repeat measurement of the same cells agrees with the first: fraction
    within +-10% (|second - first| <= 0.1 first), R^2 of second as a prediction of
    first, mean and median absolute relative difference. first, second: [n]."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    m = accuracy_metrics(a, b)
    rel = np.abs(b - a) / np.abs(a)
    return {
        "within_10pct": m["within_10pct"],
        "r2": m["r2"],
        "mean_abs_pct": float(np.mean(rel)),
        "median_abs_pct": float(np.median(rel)),
        "n": m["n"],
    }


def sample_cells(space: SearchSpace, n: int, seed: int = 0) -> list[Cell]:
    """``n`` distinct uniformly random cells of ``space`` (fewer if the space is smaller).

    Large spaces are sampled as op codes per edge, never as indices, so spaces whose
    indices pass int64 (12 nodes: 8**66 cells) work too."""
    n = _check_int("cells", n, 1)
    total = space.num_cells()
    n = min(n, total)
    rng = np.random.default_rng(seed)
    if total <= 4 * n:  # a small space: its indices fit int64
        idx = rng.choice(total, size=n, replace=False)
        return space.cells(torch.as_tensor(idx, dtype=torch.int64))
    seen: dict[tuple[int, ...], None] = {}  # an insertion-ordered set of code rows
    while len(seen) < n:
        codes = rng.integers(0, space.num_ops, size=(n, space.num_edges))
        for row in codes.tolist():
            seen.setdefault(tuple(row))
    return [space.cell_from_codes(row) for row in list(seen)[:n]]


def anchor_cells(space: SearchSpace) -> list[Cell]:
    """The two extremes of ``space`` a uniform sample rarely holds, which a linear model
    would otherwise extrapolate to (measured: -0.7 and -26 us predicted for cells of 14
    and 6 us when the sample had neither): the cell that computes nothing (every edge
    ``zero``; CellModule returns a ``zeros_like``) and the cheapest live one
    (``skip_connect`` from the input to the output, every other edge ``zero``). Only
    those the space's ops can express; none without ``zero``."""
    if OpType.ZERO not in space.ops or space.num_nodes < 2:
        return []
    codes = [space.ops.index(OpType.ZERO)] * space.num_edges
    cells = [space.cell_from_codes(codes)]
    if OpType.SKIP_CONNECT in space.ops:
        codes[space.edges.index((0, space.num_nodes - 1))] = space.ops.index(OpType.SKIP_CONNECT)
        cells.append(space.cell_from_codes(codes))
    return cells


def _anchors_to_add(
    space: SearchSpace,
    cells: Sequence[Cell],
    shape_of: Sequence[tuple[int, int, int]],
    shapes: Sequence[tuple[int, int, int]],
) -> list[tuple[Cell, tuple[int, int, int]]]:
    """(anchor cell, shape) pairs not already in the sample (``cells`` at ``shape_of``):
    every :func:`anchor_cells` cell at every shape."""
    sampled = {(tuple(space.codes(c)), s) for c, s in zip(cells, shape_of, strict=True)}
    return [
        (c, shp)
        for shp in shapes
        for c in anchor_cells(space)
        if (tuple(space.codes(c)), shp) not in sampled
    ]


def _write_csv_atomic(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _write_points(
    path: Path,
    space: SearchSpace,
    cells: Sequence[Cell],
    shape_of: Sequence[tuple[int, ...]],
    lat: np.ndarray,
    rep: np.ndarray,
    split: np.ndarray,
    preds: dict[str, np.ndarray],
) -> None:
    """points.csv: one row per measured cell (latency, repeat, split), then each
    fitted model's prediction once there are any."""
    rows = []
    for k, (c, s) in enumerate(zip(cells, shape_of, strict=True)):
        rows.append(
            [
                k,
                space.index(c),  # an exact int, also past int64
                " ".join(str(v) for v in space.codes(c)),
                "x".join(str(v) for v in s),
                f"{lat[k]:.9e}",
                "" if math.isnan(rep[k]) else f"{rep[k]:.9e}",
                split[k],
                *(f"{p[k]:.9e}" for p in preds.values()),
            ]
        )
    header = ["row", "cell_index", "op_codes", "shape", "latency_s", "repeat_s", "split"]
    header += [f"pred_{nm}_s" for nm in preds]
    _write_csv_atomic(path, header, rows)


def _plot(path: Path, measured: np.ndarray, preds: dict[str, np.ndarray], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    # axes span the measured range (x1/2 .. x2); predictions outside it (a poor model's
    # negative or huge ones) are drawn on the border
    pos = measured[measured > 0]
    lo = float(pos.min()) * 1e3 / 2 if pos.size else 1e-6
    hi = max(float(measured.max()) * 1e3 * 2, lo * 10)
    xs = np.array([lo, hi])
    ax.plot(xs, xs, "k-", lw=1, label="measured = predicted")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.85", label="+-10%")
    for (name, p), marker in zip(preds.items(), "os^v", strict=False):
        ax.scatter(measured * 1e3, np.clip(p * 1e3, lo, hi), s=14, marker=marker, label=name)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


@dataclass
class _Measurement:
    """What :func:`_measure` returns: per cell its latency and repeat (NaN without one),
    the last time_cells info, seconds spent and the load average around it."""

    lat: np.ndarray
    rep: np.ndarray
    info: dict[str, Any]
    seconds: float
    load_before: list[float]
    load_after: list[float]


def _measure(
    cells: Sequence[Cell],
    shape_of: Sequence[tuple[int, int, int]],
    shapes: Sequence[tuple[int, int, int]],
    device: str,
    mode: str,
    protocol: TimingProtocol,
    repeat: str,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> _Measurement:
    """Measure ``cells`` (each at its ``shape_of``) and their repeat (see
    :func:`run_calibration`), shape by shape."""
    load_before = list(os.getloadavg())
    t_start = time.perf_counter()
    lat = np.empty(len(cells))
    rep = np.full(len(cells), np.nan)
    info: dict[str, Any] = {}
    total = len(shapes) * protocol.rounds * (1 if repeat == "none" else 2)
    done = [0]

    def on_round() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    stat = protocol.statistic
    for si, shp in enumerate(shapes):
        idx = [k for k in range(len(cells)) if shape_of[k] == shp]
        sub = [cells[k] for k in idx]
        kw: dict[str, Any] = dict(seed=seed + si, on_round=on_round)
        if repeat == "interleaved":  # even rounds: the measurement, odd: its repeat
            both = protocol.with_(rounds=2 * protocol.rounds)
            times, info = time_cells(sub, device, shp, mode, both, **kw)
            lat[idx] = _statistic(times[:, 0::2], stat)
            rep[idx] = _statistic(times[:, 1::2], stat)
            continue
        times, info = time_cells(sub, device, shp, mode, protocol, **kw)
        lat[idx] = _statistic(times, stat)
        if repeat == "sequential":
            times2, _ = time_cells(sub, device, shp, mode, protocol, **kw)
            rep[idx] = _statistic(times2, stat)
    seconds = time.perf_counter() - t_start
    return _Measurement(lat, rep, info, seconds, load_before, list(os.getloadavg()))


def _split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train indices, held-out indices, split labels [n]) of n points."""
    n_test = max(1, int(round(holdout * n)))
    perm = np.random.default_rng(seed + 1).permutation(n)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    split = np.full(n, "train", dtype=object)
    split[test_idx] = "heldout"
    return train_idx, test_idx, split


def calibration_document(
    *,
    space: SearchSpace,
    shapes: Sequence[Sequence[int]],
    mode: str,
    protocol: TimingProtocol,
    measurement: _Measurement,
    device: str,
    repeat: str,
    seed: int,
    holdout: float,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    spec: FitSpec,
    models: dict[str, dict[str, Any]],
    best: str,
    estimator: LatencyEstimator,
    anchors: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON document of ``nas calibrate`` (format ``nas.calibration/1``): what was
    measured and how, the repeatability, every model's figures and the chosen one's
    coefficients (``estimator``, loadable by :func:`nas.load_estimator`); ``anchors``:
    the anchor cells fitted beside the sample, in text form."""
    m = measurement
    lat, rep = m.lat, m.rep
    has_rep = repeat != "none"
    return {
        "format": "nas.calibration/1",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": m.info.get("device", device),
        "device_name": m.info.get("device_name"),
        "host": platform.node(),
        "torch_version": torch.__version__,
        "mode": mode,
        "shapes": [list(s) for s in shapes],
        "threads": m.info.get("threads", protocol.threads),
        "protocol": {
            **dataclasses.asdict(protocol),
            "interleaved": "random order per round",
            "timer": m.info.get("timer"),
            "allocator": m.info.get("allocator", protocol.allocator),
        },
        "space": {"num_nodes": space.num_nodes, "ops": [op.value for op in space.ops]},
        "n_cells": len(lat) - len(anchors),  # sampled; the anchors come on top
        "anchors": list(anchors),
        "n_train": len(train_idx),
        "n_heldout": len(test_idx),
        "holdout": holdout,
        "weighting": spec.weighting,
        "ridge": spec.ridge,
        "selection": (
            f"{spec.folds}-fold cross-validation on the training cells: highest "
            "out-of-fold within +-10%, then R^2 (held-out cells are scored after)"
        ),
        "seed": seed,
        "measure_seconds": m.seconds,
        "loadavg_before": m.load_before,
        "repeat": repeat,
        "repeatability": repeatability(lat, rep) if has_rep else None,
        "repeatability_heldout": (repeatability(lat[test_idx], rep[test_idx]) if has_rep else None),
        "loadavg_after": m.load_after,
        "models": models,
        "best": best,
        "heldout_r2": models[best]["heldout_r2"],
        "within_10pct": models[best]["within_10pct"],
        "mape": models[best]["mape"],
        "kendall_tau": models[best]["kendall_tau"],
        "fastest10": models[best]["fastest10"],
        "estimator": estimator.to_dict(),
        "files": {},
    }


def write_calibration(
    out_dir: Path,
    doc: dict[str, Any],
    space: SearchSpace,
    points: Sequence[CalibrationPoint],
    measurement: _Measurement,
    split: np.ndarray,
    test_idx: np.ndarray,
    ests: dict[str, LatencyEstimator],
    plot: bool,
) -> None:
    """Write ``out_dir``/points.csv (every cell with each model's prediction), the
    predicted-vs-measured plot of the held-out cells (when ``plot``; a missing matplotlib
    is recorded in ``doc["files"]``, not raised) and calibration.json (``doc``, last);
    each file atomically. Fills ``doc["files"]``."""
    cells = [p.cell for p in points]
    shape_of = [p.shape for p in points]
    m = measurement
    all_preds = {nm: e.predict_points(points) for nm, e in ests.items()}
    _write_points(out_dir / "points.csv", space, cells, shape_of, m.lat, m.rep, split, all_preds)
    doc["files"]["points"] = "points.csv"
    if plot:
        try:
            title = (
                f"{doc['device_name']} {doc['mode']}, shapes {doc['shapes']}, "
                f"{doc['threads']} thread(s)\n{len(test_idx)} held-out cells; best "
                f"{doc['best']}: R^2 {doc['heldout_r2']:.3f}, "
                f"{100 * doc['within_10pct']:.0f}% within +-10%"
            )
            preds = {nm: p[test_idx] for nm, p in all_preds.items()}
            _plot(out_dir / "pred_vs_measured.png", m.lat[test_idx], preds, title)
            doc["files"]["plot"] = "pred_vs_measured.png"
        except ImportError as exc:  # matplotlib missing: say so, keep the rest
            doc["files"]["plot_error"] = f"no plot: {exc}"
    doc["files"]["calibration"] = "calibration.json"
    write_json_atomic(out_dir / "calibration.json", doc)


def _default_features(mode: str, n_shapes: int) -> list[str]:
    # shape-aware sets need several shapes (at one they add nothing)
    features = ["seed", "lut", "layout"]
    features += ["layout_bw", "layout_grad"] if mode == "train" else []
    features += ["layout_scaled", "rich"] if n_shapes > 1 else []
    return features


def run_calibration(
    space: SearchSpace,
    n_cells: int = 200,
    holdout: float = 0.25,
    device: str = "cpu",
    shapes: Sequence[Sequence[int]] = (DEFAULT_SHAPE,),
    mode: str = "forward",
    protocol: TimingProtocol | None = None,
    *,
    features: Sequence[str] | None = None,
    hw: HWProfile | str | None = None,
    out: str | os.PathLike[str] | None = None,
    weighting: str = "relative",
    repeat: str = "interleaved",
    seed: int = 0,
    anchors: bool = True,
    plot: bool = True,
    progress: Callable[[int, int], None] | None = None,  # (rounds done, total) per round
    **fields: Any,
) -> dict[str, Any]:
    """Sample ``n_cells`` cells of ``space``, measure them with ``protocol`` (its fields
    replaceable by keyword, e.g. ``rounds=20``; cells are spread round-robin over
    ``shapes``), measure them again for repeatability (``repeat``: "interleaved",
    the repeat's rounds alternating with the measurement's so that both see the same
    machine; "sequential", a second full measurement afterwards, which also sees the
    machine's drift between the two; or "none"), split off a
    ``holdout`` fraction, fit each feature set on the rest and score it on the held-out
    cells (least squares on relative errors by default, ``weighting``; ``features``
    None: seed, lut, layout, plus layout_bw and layout_grad in train mode and
    layout_scaled and rich over several shapes; ``anchors``: also measure and always fit
    :func:`anchor_cells` at every shape, labelled "anchor" in points.csv, so that the
    model does not extrapolate to the extremes of the space). The chosen model (``best``) is the one
    that cross-validates best on the training cells (:func:`nas.latency_fit.fit_models`);
    the held-out cells only score it. Returns the JSON document of ``nas calibrate``
    (:func:`calibration_document`; written to ``out`` with the points CSV and the plot
    when ``out`` is given, :func:`write_calibration`)."""
    p = _protocol(protocol, fields)
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if repeat not in REPEATS:
        raise ValueError(f"repeat must be one of {REPEATS}, got {repeat!r}")
    features = list(features) if features is not None else _default_features(mode, len(shapes))
    for f in features:
        if f not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {f!r}; known: {', '.join(FEATURE_SETS)}")
    _check_int("seed", seed, 0)
    shapes = [_check_measure(s, mode) for s in shapes]
    if not shapes:
        raise ValueError("shapes is empty")
    p.check_device(_as_device(device))
    if hw is None:
        hw = h200() if torch.device(device).type == "cuda" else cpu_profile()
    elif isinstance(hw, str):
        hw = cpu_profile() if hw == "cpu" else hw_profile(hw)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_writable_dir(out_dir)  # before minutes of measuring, not after

    cells = sample_cells(space, n_cells, seed)
    shape_of = [shapes[k % len(shapes)] for k in range(len(cells))]
    n_sample = len(cells)
    if anchors:  # each extreme at every shape, fitted always (never held out)
        extra = _anchors_to_add(space, cells, shape_of, shapes)
        cells += [c for c, _ in extra]
        shape_of += [s for _, s in extra]
    m = _measure(cells, shape_of, shapes, device, mode, p, repeat, seed, progress)
    points = [
        CalibrationPoint(c, float(t), s)
        for c, t, s in zip(cells, m.lat.tolist(), shape_of, strict=True)
    ]
    train_idx, test_idx, split = _split(n_sample, holdout, seed)
    train_idx = np.concatenate([train_idx, np.arange(n_sample, len(cells))])
    split = np.concatenate([split, np.full(len(cells) - n_sample, "anchor", dtype=object)])
    if out_dir is not None:  # save the measurement before anything else can fail
        _write_points(out_dir / "points.csv", space, cells, shape_of, m.lat, m.rep, split, {})

    train = [points[k] for k in train_idx]
    test = [points[k] for k in test_idx]
    shape0 = shapes[0] if len(shapes) == 1 else None
    spec = FitSpec(hw, space.ops, shape0, weighting=weighting, folds=min(FOLDS, len(train)))
    best, models, ests = fit_models(spec, features, train, test)
    if repeat != "none":  # the model against the repeat measurement of the same held-out cells
        for name, est in ests.items():
            models[name]["within_10pct_vs_repeat"] = accuracy_metrics(
                m.rep[test_idx], est.predict_points(test)
            )["within_10pct"]
    doc = calibration_document(
        space=space, shapes=shapes, mode=mode, protocol=p, measurement=m, device=device,
        repeat=repeat, seed=seed, holdout=holdout, train_idx=train_idx, test_idx=test_idx,
        spec=spec, models=models, best=best, estimator=ests[best],
        anchors=[format_cell(c) for c in cells[n_sample:]],
    )  # fmt: skip
    if out_dir is not None:
        write_calibration(out_dir, doc, space, points, m, split, test_idx, ests, plot)
    return doc


__all__ = [
    "ALLOCATORS",
    "anchor_cells",
    "DEFAULT_SHAPE",
    "MODES",
    "TimingProtocol",
    "calibration_document",
    "cpu_profile",
    "keep_freed_memory",
    "measure_cells",
    "repeatability",
    "run_calibration",
    "sample_cells",
    "time_cells",
    "write_calibration",
]
