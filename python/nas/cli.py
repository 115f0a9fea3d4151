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
