"""Cells/s of the nas::enumerate_* CPU kernels against numpy, side by side in one
process. Run under the shared lock:

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_enumerate.py

Prints markdown tables (the figures in bench/RESULTS.md come from them). The first
compares top-k under every constraint shape (upper, lower, two-sided on each column)
with ``numpy_top_k`` below, the fastest chunked numpy we could write, and alternates
the two so that a busy machine slows both alike; the second is the older per-kernel
table against the per-cell reference ``nas.ops._reference``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import numpy as np
import torch

import nas
from nas.enumerate import (
    count_cells,
    pareto_front,
    search_top_k,
    top_k_cells,
)
from nas.latency import latency_coeffs
from nas.ops import _reference


def numpy_top_k(table, coeffs, bias, low, high, num_nodes, k, largest, chunk=1 << 20):
    """Exact top-k (ties to the lower index) over a whole space, no prune_dead: the
    outer edges' feature sums and scores for every prefix are precomputed (edge by
    edge, left to right: the kernels' arithmetic), and so are the inner block's; a
    chunk of prefixes is then one broadcast add for the score and one per constrained
    column, a mask, and a threshold test against the running k-th best; prefixes whose
    best possible score or feature range rules them out are dropped before the add.
    Returns (indices [n] int64, scores [n]) best first."""
    kk, nf = table.shape
    ne = num_nodes * (num_nodes - 1) // 2
    m = _reference.enumerate_inner_edges(kk, ne)

    def sums(edges):
        acc = np.zeros((1, nf))
        for _ in range(edges):  # index = previous index * K + op: last edge fastest
            acc = (acc[:, None, :] + table[None, :, :]).reshape(-1, nf)
        return acc

    pf, inner = sums(ne - m), sums(m)
    ps = np.full(pf.shape[0], float(bias))
    si = np.zeros(inner.shape[0])
    for f in range(nf):  # left-to-right dot products, as the kernels round them
        ps = ps + coeffs[f] * pf[:, f]
        si = si + coeffs[f] * inner[:, f]
    cols = [f for f in range(nf) if np.isfinite(low[f]) or np.isfinite(high[f])]
    mm = inner.shape[0]
    step = max(1, chunk // mm)
    sign = -1.0 if largest else 1.0
    # Per prefix, without touching its cells: the best key any of them can reach and
    # whether any can meet each bound (rounding is monotone, so these are exact).
    best_key = -(ps + si.max()) if largest else ps + si.min()
    feasible = np.ones(pf.shape[0], dtype=bool)
    for f in cols:
        feasible &= (pf[:, f] + inner[:, f].min() <= high[f]) & (
            pf[:, f] + inner[:, f].max() >= low[f]
        )
    best_s, best_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    thr = np.inf  # the running k-th best key (key = sign * score)
    for p0 in range(0, pf.shape[0], step):
        rows = p0 + np.flatnonzero(feasible[p0 : p0 + step] & (best_key[p0 : p0 + step] <= thr))
        if rows.size == 0:
            continue
        key = ps[rows, None] + si[None, :]  # the one add per chunk
        if largest:
            key = -key
        keep = key <= thr
        for f in cols:
            x = pf[rows, f, None] + inner[None, :, f]
            keep &= (x >= low[f]) & (x <= high[f])
        r, j = np.nonzero(keep)
        if r.size == 0:
            continue
        cand_s = np.concatenate([best_s, key[r, j]])
        cand_i = np.concatenate([best_i, rows[r] * mm + j])
        if cand_s.size > k:
            kth = np.partition(cand_s, k - 1)[k - 1]
            sel = cand_s <= kth
            cand_s, cand_i = cand_s[sel], cand_i[sel]
        order = np.lexsort((cand_i, cand_s))[:k]
        best_s, best_i = cand_s[order], cand_i[order]
        if best_s.size == k:
            thr = best_s[-1]
    return best_i, sign * best_s


def constraint_shapes(space, table) -> dict[str, dict]:
    """Upper, lower and two-sided bounds on each column, at quantiles of a random
    sample of cells (upper: 30%, lower: 70%, two-sided: 40-60%), plus no constraint."""
    rng = np.random.default_rng(0)
    idx = np.sort(rng.integers(0, space.num_cells(), size=1 << 16))
    f, _, _ = _reference.enumerate_eval(
        table, np.zeros((1, table.shape[1])), 0.0, space.num_nodes, -1, False, idx
    )
    shapes: dict[str, dict] = {"none": {}}
    for col, name in enumerate(("flops", "bytes", "params")):
        q30, q40, q60, q70 = np.quantile(f[:, col], [0.3, 0.4, 0.6, 0.7]).tolist()
        shapes[f"{name} <= {q30:.4g}"] = {col: (None, q30)}
        shapes[f"{name} >= {q70:.4g}"] = {col: (q70, None)}
        shapes[f"{name} in [{q40:.4g}, {q60:.4g}]"] = {col: (q40, q60)}
    shapes["params in [150k, 250k] (the issue's window)"] = {2: (150_000, 250_000)}
    return shapes


def shape_table(space, table, coeffs, bias, repeat: int, with_numpy: bool) -> None:
    """top-10 per constraint shape: the kernel vs numpy_top_k, alternating runs."""
    from nas.enumerate import _bounds

    print("| constraint (top-10 by latency) | ours min / median (s) | numpy min / median (s) "
          "| numpy / ours (min) |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for name, cons in constraint_shapes(space, table).items():
        low, high = (x.numpy() for x in _bounds(cons, table.shape[1]))
        for largest in (False, True):
            ours, ref = [], []
            res = {}
            for _ in range(repeat):  # alternate the two: both see the same load
                t = time.perf_counter()
                res["ours"] = top_k_cells(space, table, coeffs, 10, cons, largest=largest,
                                          bias=bias)  # fmt: skip
                ours.append(time.perf_counter() - t)
                if with_numpy:
                    t = time.perf_counter()
                    res["np"] = numpy_top_k(table, coeffs, bias, low, high, space.num_nodes, 10,
                                            largest)  # fmt: skip
                    ref.append(time.perf_counter() - t)
            if with_numpy:  # both exact: same cells, same scores
                assert res["ours"].indices.tolist() == res["np"][0].tolist(), name
                assert res["ours"].scores.tolist() == res["np"][1].tolist(), name
            label = name + (", largest" if largest else "")
            o = f"{min(ours):.3f} / {np.median(ours):.3f}"
            r = f"{min(ref):.2f} / {np.median(ref):.2f}" if ref else "-"
            ratio = f"{min(ref) / min(ours):.0f}x" if ref else "-"
            print(f"| {label} | {o} | {r} | {ratio} |")


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def filter_table(space, table, coeffs, bias, repeat: int) -> None:
    """Scan cost of the cell filters (connected_only, distinct) over the whole space,
    with and without them, alternated so a busy machine slows both alike. top-10 also
    changes with the filters (a looser k-th best skips fewer tiles); count visits every
    cell either way, so its ratio is the filters' own cost."""
    print("| params <= 50k | filters | s (best of runs) | cells/s | x no filter |")
    print("|---|---|---:|---:|---:|")
    cons = {2: (None, 50_000)}
    n = space.num_cells()
    on = {"connected_only": True}
    both = {"connected_only": True, "distinct": True}
    variants = [("none", {}), ("connected_only", on), ("connected_only + distinct", both)]
    for query, prune in itertools.product(("top-10", "count"), (False, True)):
        best = {name: float("inf") for name, _ in variants}
        for _ in range(repeat):
            for name, kw in variants:
                t = time.perf_counter()
                if query == "count":
                    count_cells(space, table, cons, prune_dead=prune, **kw)
                else:
                    top_k_cells(space, table, coeffs, 10, cons, bias=bias, prune_dead=prune, **kw)
                best[name] = min(best[name], time.perf_counter() - t)
        for name, _ in variants:
            mode = f"{query}{', prune_dead' if prune else ''}"
            print(f"| {mode} | {name} | {best[name]:.3f} | {n / best[name]:.3g} | "
                  f"{best[name] / best['none']:.2f} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--numpy-cells", type=int, default=1 << 22, help="cells the numpy run scans")
    ap.add_argument("--shapes-only", action="store_true", help="only the constraint-shape table")
    ap.add_argument("--no-numpy", action="store_true", help="skip numpy in the shape table")
    ap.add_argument("--filters", action="store_true", help="only the cell filters' cost table")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

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

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, nas {nas.__version__}")  # fmt: skip
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    if args.filters:
        filter_table(space, table, coeffs, bias, args.repeat)
        return
    shape_table(space, table, coeffs, bias, args.repeat, not args.no_numpy)
    if args.shapes_only:
        return
    print()

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
