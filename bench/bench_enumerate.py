"""Cells/s of the nas::enumerate_* CPU kernels against the chunked numpy reference,
side by side in one process. Run under the shared lock:

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_enumerate.py

Prints a markdown table (the figures in bench/RESULTS.md come from it).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import nas
from nas.enumerate import (
    count_cells,
    latency_coeffs,
    pareto_front,
    search_top_k,
    top_k_cells,
)
from nas.ops import _reference


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--numpy-cells", type=int, default=1 << 22, help="cells the numpy run scans")
    args = ap.parse_args()

    space = nas.SearchSpace(5)
    n = space.num_cells()
    table = nas.op_feature_table(space.ops)
    coeffs, bias = latency_coeffs(nas.hw_profile("dgx_spark"))
    cons = {2: (None, 50_000)}
    t = torch.tensor(table)
    c = torch.tensor(coeffs)
    inf = float("inf")
    low = torch.full((3,), -inf, dtype=torch.float64)
    high = torch.tensor([inf, inf, 50_000.0], dtype=torch.float64)
    zero = space.ops.index(nas.OpType.ZERO)

    rows = []

    def kernel(name, fn, cells):
        s = _best(fn, args.repeat)
        rows.append((name, cells, s, cells / s))
        return cells / s

    # numpy reference on a slice (it runs ~1e7 cells/s; the full space would take minutes)
    m = args.numpy_cells

    def numpy_topk():
        _reference.enumerate_top_k(t, c, bias, low, high, 5, zero, False, 0, m, 10, False)

    np_rate = kernel("numpy reference top-10, params <= 50k (slice)", numpy_topk, m)
    k_rate = kernel(
        "kernel top-10, params <= 50k (full space)",
        lambda: top_k_cells(space, table, coeffs, 10, cons),
        n,
    )
    kernel("kernel top-10, no constraint", lambda: top_k_cells(space, table, coeffs, 10), n)
    kernel(
        "kernel top-10 largest, params <= 50k",
        lambda: top_k_cells(space, table, coeffs, 10, cons, largest=True),
        n,
    )
    kernel("kernel count, params <= 50k", lambda: count_cells(space, table, cons), n)
    kernel(
        "kernel top-10 prune_dead, params <= 50k",
        lambda: top_k_cells(space, table, coeffs, 10, cons, prune_dead=True),
        n,
    )
    kernel(
        "kernel Pareto (latency, params), 1/8 of the space",
        lambda: pareto_front(space, table, [coeffs, 2], count=n // 8),
        n // 8,
    )

    def numpy_prune():
        _reference.enumerate_top_k(t, c, bias, low, high, 5, zero, True, 0, m // 4, 10, False)

    np_prune = kernel("numpy reference top-10 prune_dead (slice)", numpy_prune, m // 4)

    if torch.cuda.is_available():  # the GPU figure the issue asks for (>= 5e10 cells/s)
        kernel(
            "CUDA top-10, params <= 50k (full 5-node space)",
            lambda: (top_k_cells(space, table, coeffs, 10, cons, device="cuda"),
                     torch.cuda.synchronize()),
            n,
        )  # fmt: skip
        s6 = nas.SearchSpace(6)
        n6 = 1 << 36
        kernel(
            "CUDA top-10, params <= 50k (6 nodes, first 2**36 cells)",
            lambda: (top_k_cells(s6, table, coeffs, 10, cons, count=n6, device="cuda"),
                     torch.cuda.synchronize()),
            n6,
        )  # fmt: skip

    bb_times = []
    for nodes in (5, 6, 8):
        sp = nas.SearchSpace(nodes)
        tb = nas.op_feature_table(sp.ops)
        s = _best(lambda sp=sp, tb=tb: search_top_k(sp, tb, coeffs, 10, {2: (36_864, 50_000)}), 1)
        bb_times.append((nodes, sp.num_cells(), s))

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, nas {nas.__version__}")  # fmt: skip
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"| run | cells | best of {args.repeat} (s) | cells/s |")
    print("|---|---:|---:|---:|")
    for name, cells, s, rate in rows:
        print(f"| {name} | {cells:,} | {s:.3f} | {rate:.3g} |")
    print(f"\nkernel / numpy (top-10, params <= 50k): {k_rate / np_rate:.0f}x")
    prune_rate = rows[5][3]
    print(f"kernel / numpy (prune_dead): {prune_rate / np_prune:.0f}x")
    print("\n| branch and bound: fastest 10 with 36,864 <= params <= 50,000 | cells | s |")
    print("|---|---:|---:|")
    for nodes, cells, s in bb_times:
        print(f"| {nodes} nodes, 8 ops | {float(cells):.3g} | {s:.3f} |")


if __name__ == "__main__":
    main()
