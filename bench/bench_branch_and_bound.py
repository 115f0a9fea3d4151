"""Branch and bound timings for bench/RESULTS.md: the top-10 cells by latency at 6-8
nodes, fastest and slowest, with and without params <= 50,000, one thread; with
``--filters`` also under the cell filters (connected cells only, the CLI's default;
and connected + distinct).

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_branch_and_bound.py \\
        [TIME_LIMIT_S] [--filters]
"""

import os
import sys
import time

import torch

import nas
from nas.enumerate import SearchBudgetExceeded, search_top_k
from nas.latency import latency_coeffs


def main() -> None:
    torch.set_num_threads(1)
    coeffs, bias = latency_coeffs(nas.hw_profile("dgx_spark"))
    args = [a for a in sys.argv[1:] if a != "--filters"]
    limit = float(args[0]) if args else 10.0
    filters = {"": {}}
    if "--filters" in sys.argv:
        filters["connected"] = {"connected_only": True}
        filters["connected + distinct"] = {"connected_only": True, "distinct": True}
    print("load average", os.getloadavg())
    print("| nodes | query | filters | s |\n|---|---|---|---:|")
    for nodes in (6, 7, 8):
        space = nas.SearchSpace(nodes)
        table = nas.op_feature_table(space.ops)
        for largest in (False, True):
            for budget in (None, 50_000):
                for name, kw in filters.items():
                    cons = {2: (None, budget)} if budget else None
                    t = time.perf_counter()
                    try:
                        search_top_k(space, table, coeffs, 10, cons, largest=largest, bias=bias,
                                     time_limit=limit, **kw)  # fmt: skip
                        res = f"{time.perf_counter() - t:.4f}"
                    except SearchBudgetExceeded:
                        res = f"> {limit:g} (stopped)"
                    query = ("slowest" if largest else "fastest") + (
                        f", params <= {budget:,}" if budget else ""
                    )
                    print(f"| {nodes} | {query} | {name or 'none'} | {res} |", flush=True)
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
