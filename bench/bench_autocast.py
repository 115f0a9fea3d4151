"""float32 vs torch.autocast("cpu", bfloat16): the DARTS step, the signal supernet's
DARTS step, and the fused mixed op alone, side by side in one process.

Each variant runs on its own deep copy of the same model and data; steps alternate
between the two (after a warm-up of each) and the minimum and median over the timed
steps are reported (the machine is shared: the minimum is the least disturbed run).
The bf16 mixed op converts its bf16 inputs to float32, runs the float32 kernel and
rounds the outputs (nas/ops/mixed_op.py), so on a CPU without native bf16 arithmetic
the gain, if any, comes from the convolutions and linears that autocast runs in bf16.

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_autocast.py [--steps 7] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import time

import torch

import nas
from nas.ops import mixed_op

ALL = [op.value for op in nas.all_ops()]
SIGNAL = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]


def _ctx(variant: str):  # noqa: ANN202
    if variant == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _time(fns: dict[str, callable], steps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for k, fn in fns.items():  # warm-up
        with _ctx(k):
            fn()
    for _ in range(steps):
        for k, fn in fns.items():
            with _ctx(k):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return times


def _row(name: str, shape: str, times: dict[str, list[float]]) -> dict:
    ms = {k: (min(v) * 1e3, statistics.median(v) * 1e3) for k, v in times.items()}
    return {
        "case": name,
        "shape": shape,
        "fp32_ms_min": round(ms["fp32"][0], 2),
        "fp32_ms_median": round(ms["fp32"][1], 2),
        "bf16_ms_min": round(ms["bf16"][0], 2),
        "bf16_ms_median": round(ms["bf16"][1], 2),
        "bf16_speedup_min": round(ms["fp32"][0] / ms["bf16"][0], 2),
    }


def _darts_step(model: torch.nn.Module, data: list[torch.Tensor]):  # noqa: ANN202
    opt = nas.DARTSOptimizer(model, 0.01, 3e-4, alpha_optimizer="adam")
    return lambda: opt.step(*data)


def run(steps: int) -> list[dict]:
    torch.set_num_threads(2)
    rows = []
    for space_name, ops in (("signal", SIGNAL), ("all8", ALL)):
        for B, N, D in ((224, 42, 16), (256, 42, 64)):
            torch.manual_seed(0)
            net = nas.SuperNet(nas.SearchSpace(4, ops), D, num_layers=1)
            data = [torch.randn(B, N, D) for _ in range(4)]
            fns = {v: _darts_step(copy.deepcopy(net), data) for v in ("fp32", "bf16")}
            rows.append(_row(f"DARTS step, SuperNet {space_name}", f"[{B}, {N}, {D}]",
                             _time(fns, steps)))  # fmt: skip
    # The signal supernet (RevIN, patching, 2 residual cells, head), one DARTS step.
    torch.manual_seed(0)
    model = nas.build_supernet_model(
        nas.SearchSpace(3, ALL), lookback=336, horizon=96, num_features=7, patch_len=16,
        stride=8, hidden=64, num_layers=2,
    )  # fmt: skip
    data = [torch.randn(32, 336, 7), torch.randn(32, 96, 7)] * 2
    fns = {v: _darts_step(copy.deepcopy(model), data) for v in ("fp32", "bf16")}
    rows.append(_row("DARTS step, signal supernet all8, 2 layers", "B=32, L=336, F=7, D=64",
                     _time(fns, steps)))  # fmt: skip
    # The mixed op alone (forward + backward), conv outputs precomputed.
    for B, N, D in ((224, 42, 16), (256, 42, 64), (896, 64, 128)):
        g = torch.Generator().manual_seed(0)
        args = {}
        for v, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            x = torch.randn(B, N, D, generator=g).to(dt).requires_grad_(True)
            a = torch.zeros(len(ALL), requires_grad=True)
            ps = [torch.randn(B, D, N, generator=g).to(dt).transpose(1, 2).requires_grad_(True)
                  for _ in range(4)]  # fmt: skip
            args[v] = (x, a, ps)

        def fb(v: str, args=args) -> None:
            x, a, ps = args[v]
            mixed_op(x, a, ALL, ps).float().sum().backward()

        fns = {v: (lambda v=v: fb(v)) for v in ("fp32", "bf16")}
        rows.append(_row("mixed op fwd+bwd, all 8 ops", f"[{B}, {N}, {D}]", _time(fns, steps)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = run(args.steps)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| case | shape | fp32 ms (min / median) | bf16 autocast ms (min / median) | "
          "fp32 / bf16 (min) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in rows:
        fp32 = f"{r['fp32_ms_min']} / {r['fp32_ms_median']}"
        bf16 = f"{r['bf16_ms_min']} / {r['bf16_ms_median']}"
        print(f"| {r['case']} | {r['shape']} | {fp32} | {bf16} | {r['bf16_speedup_min']}x |")


if __name__ == "__main__":
    main()
