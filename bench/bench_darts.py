"""One DARTS search step on a SuperNet: the batched, fused cell vs the eager supernet.

A step is DARTSOptimizer.step (first order, Adam on alpha): forward + backward on the
training batch, an SGD step on the weights, forward + backward on the validation
batch, a step on alpha. Three variants of the same model run side by side in one
process on the same data, alternating (the machine is shared: the minimum is the run
least disturbed, the median is given beside it):

* ``fused``: the default ``SuperNet``: ``DARTSCell(batched=True)`` (one Conv1d per node
  with folded kernels, where the space has conv ops) and the native ``nas.ops.mixed_op``;
* ``per_edge``: ``DARTSCell(batched=False)`` with the native mixed op (each op's module
  on each edge, as before the batched cell);
* ``eager``: ``DARTSCell(batched=False)`` with the pure-PyTorch reference
  ``nas.ops._reference.mixed_op``: what quark0/darts computes, the baseline.

``--memory`` instead runs each variant in its own subprocess (3 steps) and reports
the process's peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and that peak minus the resident memory just before the first step.

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_darts.py [--quick] [--json]
        [--memory] [--threads T]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings

import torch

import nas
from nas.ops import _reference

SHAPES = [(224, 42, 16), (256, 42, 64), (896, 64, 128)]
SPACES = {
    "signal": ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"],
    "all8": [op.value for op in nas.all_ops()],
}
VARIANTS = ("fused", "per_edge", "eager")


def _setup(space_name: str, shape: tuple[int, int, int]):
    B, N, D = shape
    torch.manual_seed(0)
    net = nas.SuperNet(nas.SearchSpace(4, SPACES[space_name]), D, num_layers=1)
    opt = nas.DARTSOptimizer(net, 0.025, 3e-4, alpha_optimizer="adam")
    data = [torch.randn(B, N, D) for _ in range(4)]
    return net, opt, data


def _use(net: nas.SuperNet, variant: str, native) -> None:  # noqa: ANN001
    for cell in net.cells:
        cell.batched = variant == "fused"
    nas.ops.mixed_op = _reference.mixed_op if variant == "eager" else native


def _time_step(opt: nas.DARTSOptimizer, data: list[torch.Tensor], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        opt.step(*data)
        out.append(time.perf_counter() - t)
    return out


def run(quick: bool) -> list[dict]:
    rows = []
    native = nas.ops.mixed_op
    shapes = SHAPES[:2] if quick else SHAPES
    for space_name in SPACES:
        for shape in shapes:
            net, opt, data = _setup(space_name, shape)
            large = shape[0] * shape[1] * shape[2] > 2_000_000
            reps = 3 if large else 7
            times: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for _ in range(2):  # alternate, after a warm-up of each
                for v in VARIANTS:
                    _use(net, v, native)
                    opt.step(*data)
                    times[v] += _time_step(opt, data, reps)
            _use(net, "fused", native)
            row: dict = {"space": space_name, "shape": list(shape)}
            for v in VARIANTS:
                row[f"{v}_ms"] = round(min(times[v]) * 1e3, 2)
                row[f"{v}_median_ms"] = round(statistics.median(times[v]) * 1e3, 2)
            row["speedup"] = round(min(times["eager"]) / min(times["fused"]), 2)
            row["speedup_median"] = round(
                statistics.median(times["eager"]) / statistics.median(times["fused"]), 2
            )
            rows.append(row)
    return rows


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_memory(space_name: str, shape: tuple[int, int, int], variant: str) -> dict:
    """In this process (run it in a fresh one): 3 steps of ``variant``; MiB."""
    net, opt, data = _setup(space_name, shape)
    _use(net, variant, nas.ops.mixed_op)
    before = _rss_mib()
    for _ in range(3):
        opt.step(*data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"peak_mib": round(peak, 1), "step_peak_mib": round(peak - before, 1)}


def run_memory(quick: bool) -> list[dict]:
    rows = []
    for shape in SHAPES[:2] if quick else SHAPES:
        row: dict = {"space": "all8", "shape": list(shape)}
        for v in VARIANTS:
            arg = json.dumps(["all8", shape, v])
            out = subprocess.run(
                [sys.executable, __file__, "--peak-child", arg],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row[v] = json.loads(out)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the largest shape")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--memory", action="store_true", help="peak RSS per variant, all8")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads")
    ap.add_argument("--peak-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if not hasattr(torch.ops.nas, "mixed_op"):
        raise SystemExit("the native nas::mixed_op is not built: nothing to compare")
    if args.peak_child:
        space_name, shape, variant = json.loads(args.peak_child)
        print(json.dumps(peak_memory(space_name, tuple(shape), variant)))
        return
    rows = run_memory(args.quick) if args.memory else run(args.quick)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.memory:
        print("| [B, N, D] | peak RSS MiB (step's part): fused | per-edge fused | eager |")
        print("|---|---|---|---|")
        for r in rows:
            cells = [f"{r[v]['peak_mib']} ({r[v]['step_peak_mib']})" for v in VARIANTS]
            print(f"| {r['shape']} | " + " | ".join(cells) + " |")
        return
    print(
        "| space | [B, N, D] | fused step ms (min / median) | per-edge fused ms (min / median) "
        "| eager ms (min / median) | speedup vs eager (min / median) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['space']} | {r['shape']} | {r['fused_ms']} / {r['fused_median_ms']} | "
            f"{r['per_edge_ms']} / {r['per_edge_median_ms']} | "
            f"{r['eager_ms']} / {r['eager_median_ms']} | "
            f"{r['speedup']}x / {r['speedup_median']}x |"
        )


if __name__ == "__main__":
    main()
