"""Branch and bound timings for bench/RESULTS.md: the top-10 cells by latency at 6-8
nodes, fastest and slowest, with and without params <= 50,000, one thread.

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_search.py [TIME_LIMIT_S]
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
    limit = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    print("load average", os.getloadavg())
    print("| nodes | query | s |\n|---|---|---:|")
    for nodes in (6, 7, 8):
        space = nas.SearchSpace(nodes)
        table = nas.op_feature_table(space.ops)
        for largest in (False, True):
            for budget in (None, 50_000):
                cons = {2: (None, budget)} if budget else None
                t = time.perf_counter()
                try:
                    search_top_k(space, table, coeffs, 10, cons, largest=largest, bias=bias,
                                 time_limit=limit)  # fmt: skip
                    res = f"{time.perf_counter() - t:.4f}"
                except SearchBudgetExceeded:
                    res = f"> {limit:g} (stopped)"
                query = ("slowest" if largest else "fastest") + (
                    f", params <= {budget:,}" if budget else ""
                )
                print(f"| {nodes} | {query} | {res} |", flush=True)
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
