"""The ``nas`` command line. Each subcommand is a function ``_cmd_<name>`` registered
in ``_build_parser``; ``--json`` prints one JSON document instead of a table."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


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
    doc = run_calibration(
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
        min_block_s=args.min_block_ms / 1e3,
        threads=args.threads,
        statistic=args.statistic,
        timer=args.timer,
        weighting=args.fit,
        repeat=args.repeat,
        seed=args.seed,
    )
    if args.json:
        _print_json(doc)
        return 0
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
        mark = "  <- best" if name == doc["best"] else ""
        print(
            f"  {name:5s} held-out R^2 {m['heldout_r2']:.4f}, {100 * m['within_10pct']:.1f}% "
            f"within +-10%, MAPE {100 * m['mape']:.1f}%{mark}"
        )
    if args.out:
        print(
            "  wrote "
            + ", ".join(f"{args.out}/{f}" for k, f in doc["files"].items() if k != "plot_error")
        )
        if "plot_error" in doc["files"]:
            print("  " + doc["files"]["plot_error"])
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Neural Architecture Search for small time-series models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("space", help="size, edges and ops of a cell search space")
    p.add_argument("--nodes", type=int, default=4, help="nodes per cell (default 4)")
    p.add_argument(
        "--ops", default="all", help='"all", "signal", or a comma list such as conv_3x3,zero'
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_space)

    p = sub.add_parser("info", help="what the native library was built with")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "calibrate", help="measure sampled cells on a device and fit latency models to them"
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
        help='comma list of seed,lut,layout,layout_bw,rich; "auto": seed,lut,layout, '
        "+layout_bw in train mode, +rich over several shapes",
    )
    p.add_argument("--hw", default=None, help="profile for the seed units: cpu, dgx_spark, h200")
    p.add_argument("--rounds", type=int, default=60, help="interleaved timing rounds (60)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per cell (3)")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_calibrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad input: one clear line, no traceback
        print(f"nas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
