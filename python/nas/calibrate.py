"""Measured calibration: time real cell modules on a device and fit latency models.

:func:`measure_cells` times each cell as the module the signal models run
(:class:`nas.signal_ops.CellModule` on a [batch, patches, hidden] tensor). The machines
this runs on are shared and noisy, so the protocol is built against drift:

* the thread count is fixed (``torch.set_num_threads(threads)``, restored after) and
  recorded;
* every module is warmed up first, and each timed block repeats the cell ``number``
  times so that one block lasts at least ``min_block_s`` (0.5 ms: timer jitter,
  ~0.1 us, is then negligible, yet blocks are short enough that many of them run
  between other processes' time slices; measured here, 0.5 ms blocks x 60 rounds
  repeated better than 2 ms x 30 under other helpers' builds); the per-call time of a
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
training split, report held-out R^2 / within +-10% / MAPE, and write the points (CSV),
the coefficients and metrics (JSON) and a predicted-vs-measured plot (PNG).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_path, check_writable_dir
from .costs import HWProfile, cpu_profile, h200, hw_profile
from .latency import (
    FEATURE_SETS,
    WEIGHTINGS,
    CalibrationPoint,
    _check_shape,
    accuracy_metrics,
    write_json_atomic,
)
from .latency_fit import FOLDS, FitSpec, fit_models
from .signal_ops import CellModule
from .space import Cell, SearchSpace, _check_int

DEFAULT_SHAPE: tuple[int, int, int] = (16, 64, 128)
MODES = ("forward", "train")
_MAX_NUMBER = 100_000


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


def _check_args(
    shape: Sequence[int], mode: str, rounds: int, warmup: int, threads: int, min_block_s: float
) -> tuple[int, int, int]:
    s = _check_shape(shape)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    _check_int("rounds", rounds, 1)
    _check_int("warmup", warmup, 0)
    _check_int("threads", threads, 1)
    if isinstance(min_block_s, bool) or not isinstance(min_block_s, (int, float)):
        raise ValueError(f"min_block_s must be a number of seconds, got {min_block_s!r}")
    if not (math.isfinite(min_block_s) and min_block_s >= 0):
        raise ValueError(f"min_block_s must be finite and >= 0, got {min_block_s!r}")
    return s  # type: ignore[return-value]


TIMERS = ("wall", "thread")
REPEATS = ("interleaved", "sequential", "none")


def _as_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu or cuda[:N], got {device!r}") from None
    _check_device(dev)
    return dev


def _check_device(dev: torch.device) -> None:
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {dev} requested but torch.cuda.is_available() is False")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], got {dev}")


def _check_timer(timer: str, dev: torch.device, threads: int) -> None:
    if timer not in TIMERS:
        raise ValueError(f"timer must be one of {TIMERS}, got {timer!r}")
    if timer == "thread" and dev.type != "cpu":
        raise ValueError(f'timer "thread" is for CPU devices; {dev} is timed with events')
    if timer == "thread" and threads != 1:
        raise ValueError(
            f'timer "thread" counts one thread\'s CPU time, so it needs threads=1, got {threads}'
        )


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


def time_cells(
    cells: Sequence[Cell],
    device: str | torch.device = "cpu",
    shape: Sequence[int] = DEFAULT_SHAPE,
    mode: str = "forward",
    *,
    rounds: int = 60,
    warmup: int = 3,
    min_block_s: float = 5e-4,
    threads: int = 1,
    seed: int = 0,
    timer: str = "wall",
    clock: Callable[[], float] | None = None,
    on_round: Callable[[], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Time every cell in interleaved rounds (the protocol of the module docstring).

    Returns (times [len(cells), rounds] float64, seconds per call of each cell in each
    round; info: the protocol as run: threads, number per cell, device, shape, ...).
    ``timer`` on CPU: "wall" (``time.perf_counter``) or "thread" (``time.thread_time``,
    the CPU time of the calling thread: time spent descheduled by other processes on a
    shared machine is not counted; needs ``threads=1``, where ATen runs every kernel
    on the calling thread). CUDA always uses CUDA events. ``clock`` overrides the CPU
    timer (for tests).
    """
    batch, patches, hidden = _check_args(shape, mode, rounds, warmup, threads, min_block_s)
    _check_int("seed", seed, 0)
    dev = _as_device(device)
    _check_timer(timer, dev, threads)
    if clock is None:
        clock = time.thread_time if timer == "thread" else time.perf_counter
    cells = list(cells)
    if not cells:
        raise ValueError("cells is empty: nothing to measure")
    use_cuda = dev.type == "cuda"
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            modules = [CellModule(c, hidden).to(dev) for c in cells]
            x = torch.randn(batch, patches, hidden, device=dev)
        steps = [_make_step(m, x, mode) for m in modules]

        def sync() -> None:
            if use_cuda:
                torch.cuda.synchronize(dev)

        def run_block(step: Callable[[], None], number: int) -> float:
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
            for _ in range(warmup):
                for step in steps:
                    step()
            sync()
            # one probe call per cell sizes its block: >= min_block_s, at least one call
            numbers = []
            for step in steps:
                t = run_block(step, 1)
                n = 1 if t <= 0 else math.ceil(min_block_s / t)
                numbers.append(int(min(max(n, 1), _MAX_NUMBER)))
            rng = np.random.default_rng(seed)
            times = np.empty((len(cells), rounds), dtype=np.float64)
            for r in range(rounds):
                for i in rng.permutation(len(cells)).tolist():
                    times[i, r] = run_block(steps[i], numbers[i])
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
            "rounds": rounds,
            "warmup": warmup,
            "min_block_s": min_block_s,
            "numbers": numbers,
            "timer": "cuda events"
            if use_cuda
            else ("time.thread_time" if timer == "thread" else "time.perf_counter"),
        }
    finally:
        torch.set_num_threads(old_threads)
    return times, info


def measure_cells(
    cells: Sequence[Cell],
    device: str | torch.device = "cpu",
    shape: Sequence[int] = DEFAULT_SHAPE,
    mode: str = "forward",
    *,
    rounds: int = 60,
    warmup: int = 3,
    min_block_s: float = 5e-4,
    threads: int = 1,
    statistic: str = "min",
    seed: int = 0,
    timer: str = "wall",
    clock: Callable[[], float] | None = None,
) -> list[CalibrationPoint]:
    """Measure each cell's latency (seconds per call of CellModule(cell, hidden) on a
    [batch, patches, hidden] input; ``mode="train"`` times forward + backward) with the
    protocol of the module docstring; returns one CalibrationPoint per cell, in order,
    each carrying ``shape``."""
    _statistic(np.zeros((1, 1)), statistic)  # validate before spending time
    times, _ = time_cells(
        cells,
        device,
        shape,
        mode,
        rounds=rounds,
        warmup=warmup,
        min_block_s=min_block_s,
        threads=threads,
        seed=seed,
        timer=timer,
        clock=clock,
    )
    lat = _statistic(times, statistic)
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


def run_calibration(
    space: SearchSpace,
    n_cells: int = 200,
    holdout: float = 0.25,
    device: str = "cpu",
    shapes: Sequence[Sequence[int]] = (DEFAULT_SHAPE,),
    mode: str = "forward",
    *,
    features: Sequence[str] | None = None,
    hw: HWProfile | str | None = None,
    out: str | os.PathLike[str] | None = None,
    rounds: int = 60,
    warmup: int = 3,
    min_block_s: float = 5e-4,
    threads: int = 1,
    statistic: str = "min",
    timer: str = "wall",
    weighting: str = "relative",
    repeat: str = "interleaved",
    seed: int = 0,
    plot: bool = True,
    progress: Callable[[int, int], None] | None = None,  # (rounds done, total) per round
) -> dict[str, Any]:
    """Sample ``n_cells`` cells of ``space``, measure them (cells are spread round-robin
    over ``shapes``), measure them again for repeatability (``repeat``: "interleaved",
    the repeat's rounds alternating with the measurement's so that both see the same
    machine; "sequential", a second full measurement afterwards, which also sees the
    machine's drift between the two; or "none"), split off a
    ``holdout`` fraction, fit each feature set on the rest and score it on the held-out
    cells (least squares on relative errors by default, ``weighting``; ``features``
    None: seed, lut, layout, plus layout_bw and layout_grad in train mode and
    layout_scaled and rich over several shapes). The chosen model (``best``) is the one
    that cross-validates best on the training cells (:func:`nas.latency_fit.fit_models`);
    the held-out cells only score it. Returns the JSON document of ``nas calibrate``
    (written to ``out`` with the points CSV and the plot when ``out`` is given)."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if repeat not in REPEATS:
        raise ValueError(f"repeat must be one of {REPEATS}, got {repeat!r}")
    if features is None:  # shape-aware sets need several shapes (at one they add nothing)
        features = ["seed", "lut", "layout"]
        features += ["layout_bw", "layout_grad"] if mode == "train" else []
        features += ["layout_scaled", "rich"] if len(shapes) > 1 else []
    for f in features:
        if f not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {f!r}; known: {', '.join(FEATURE_SETS)}")
    _check_int("seed", seed, 0)
    shapes = [_check_args(s, mode, rounds, warmup, threads, min_block_s) for s in shapes]
    if not shapes:
        raise ValueError("shapes is empty")
    _statistic(np.zeros((1, 1)), statistic)
    _check_timer(timer, _as_device(device), threads)
    if hw is None:
        hw = h200() if torch.device(device).type == "cuda" else cpu_profile()
    elif isinstance(hw, str):
        hw = cpu_profile() if hw == "cpu" else hw_profile(hw)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_writable_dir(out_dir)  # before minutes of measuring, not after

    cells = sample_cells(space, n_cells, seed)
    shape_of = [shapes[k % len(shapes)] for k in range(len(cells))]
    load_before = list(os.getloadavg())
    t_start = time.perf_counter()
    lat = np.empty(len(cells))
    rep = np.full(len(cells), np.nan)
    info: dict[str, Any] = {}
    total = len(shapes) * rounds * (1 if repeat == "none" else 2)
    done = [0]

    def on_round() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    for si, shp in enumerate(shapes):
        idx = [k for k in range(len(cells)) if shape_of[k] == shp]
        kw = dict(
            rounds=rounds,
            warmup=warmup,
            min_block_s=min_block_s,
            threads=threads,
            seed=seed + si,
            timer=timer,
            on_round=on_round,
        )
        sub = [cells[k] for k in idx]
        if repeat == "interleaved":  # even rounds: the measurement, odd: its repeat
            kw["rounds"] = 2 * rounds
            times, info = time_cells(sub, device, shp, mode, **kw)  # type: ignore[arg-type]
            lat[idx] = _statistic(times[:, 0::2], statistic)
            rep[idx] = _statistic(times[:, 1::2], statistic)
            continue
        times, info = time_cells(sub, device, shp, mode, **kw)  # type: ignore[arg-type]
        lat[idx] = _statistic(times, statistic)
        if repeat == "sequential":
            times2, _ = time_cells(sub, device, shp, mode, **kw)  # type: ignore[arg-type]
            rep[idx] = _statistic(times2, statistic)
    measure_s = time.perf_counter() - t_start

    points = [
        CalibrationPoint(c, float(t), s)
        for c, t, s in zip(cells, lat.tolist(), shape_of, strict=True)
    ]
    n = len(points)
    n_test = max(1, int(round(holdout * n)))
    perm = np.random.default_rng(seed + 1).permutation(n)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    split = np.full(n, "train", dtype=object)
    split[test_idx] = "heldout"
    if out_dir is not None:  # save the measurement before anything else can fail
        _write_points(out_dir / "points.csv", space, cells, shape_of, lat, rep, split, {})

    train = [points[k] for k in train_idx]
    test = [points[k] for k in test_idx]
    y_test = lat[test_idx]
    shape0 = shapes[0] if len(shapes) == 1 else None
    spec = FitSpec(hw, space.ops, shape0, weighting=weighting, folds=min(FOLDS, len(train)))
    best, models, ests = fit_models(spec, features, train, test)
    preds = {name: est.predict_points(test) for name, est in ests.items()}
    if repeat != "none":  # the model against the repeat measurement of the same held-out cells
        for name, p in preds.items():
            models[name]["within_10pct_vs_repeat"] = accuracy_metrics(rep[test_idx], p)[
                "within_10pct"
            ]

    doc: dict[str, Any] = {
        "format": "nas.calibration/1",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": info.get("device", device),
        "device_name": info.get("device_name"),
        "host": platform.node(),
        "torch_version": torch.__version__,
        "mode": mode,
        "shapes": [list(s) for s in shapes],
        "threads": info.get("threads", threads),
        "protocol": {
            "rounds": rounds,
            "warmup": warmup,
            "min_block_s": min_block_s,
            "statistic": statistic,
            "interleaved": "random order per round",
            "timer": info.get("timer"),
        },
        "space": {"num_nodes": space.num_nodes, "ops": [op.value for op in space.ops]},
        "n_cells": n,
        "n_train": len(train),
        "n_heldout": len(test),
        "holdout": holdout,
        "weighting": weighting,
        "ridge": spec.ridge,
        "selection": (
            f"{spec.folds}-fold cross-validation on the training cells: highest "
            "out-of-fold within +-10%, then R^2 (held-out cells are scored after)"
        ),
        "seed": seed,
        "measure_seconds": measure_s,
        "loadavg_before": load_before,
        "repeat": repeat,
        "repeatability": repeatability(lat, rep) if repeat != "none" else None,
        "repeatability_heldout": (
            repeatability(lat[test_idx], rep[test_idx]) if repeat != "none" else None
        ),
        "loadavg_after": list(os.getloadavg()),
        "models": models,
        "best": best,
        "heldout_r2": models[best]["heldout_r2"],
        "within_10pct": models[best]["within_10pct"],
        "mape": models[best]["mape"],
        "kendall_tau": models[best]["kendall_tau"],
        "fastest10": models[best]["fastest10"],
        "estimator": ests[best].to_dict(),
        "files": {},
    }
    if out_dir is not None:
        all_preds = {nm: e.predict_points(points) for nm, e in ests.items()}
        _write_points(out_dir / "points.csv", space, cells, shape_of, lat, rep, split, all_preds)
        doc["files"]["points"] = "points.csv"

        if plot:
            try:
                title = (
                    f"{doc['device_name']} {mode}, shapes {shapes}, {threads} thread(s)\n"
                    f"{len(y_test)} held-out cells; best {best}: R^2 {doc['heldout_r2']:.3f}, "
                    f"{100 * doc['within_10pct']:.0f}% within +-10%"
                )
                _plot(out_dir / "pred_vs_measured.png", y_test, preds, title)
                doc["files"]["plot"] = "pred_vs_measured.png"
            except ImportError as exc:  # matplotlib missing: say so, keep the rest
                doc["files"]["plot_error"] = f"no plot: {exc}"
        doc["files"]["calibration"] = "calibration.json"
        write_json_atomic(out_dir / "calibration.json", doc)
    return doc


__all__ = [
    "DEFAULT_SHAPE",
    "MODES",
    "cpu_profile",
    "measure_cells",
    "repeatability",
    "run_calibration",
    "sample_cells",
    "time_cells",
]
