"""The signal pipeline on ETTh1 (all 7 series, the ETT split), as a user runs it.

1. ``nas search --data ETTh1.csv --lookback L --horizon H --split ett --seed S`` with
   the CLI's DEFAULT settings otherwise, one subprocess per seed: test MSE/MAE over
   all test windows, params, search + retrain wall time.
2. The same retraining spent on ``--random-cells`` random cells of the same space
   (``nas.train_cell``), the best by validation MSE: does the search beat random?
3. The search step (DARTSOptimizer.step on the signal supernet at the default
   shapes), as nas runs it (the batched DARTSCell, the fused mixed op) vs the eager
   supernet (per-edge cells, the reference mixed op), interleaved in one process.

    .venv/bin/python bench/bench_search.py --data ../shared/data/ETTh1.csv \\
        [--horizons 96] [--seeds 0,1,2] [--random-cells 10] [--threads 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

import nas
from nas.ops import _reference

PUBLISHED = [
    ("PatchTST/42 (L=336, full test set)", 0.385, 0.406),
    ("DLinear (L=336, full test set)", 0.384, 0.405),
    ("CycleNet/Linear (L=336)", 0.3745, 0.3965),
    ("FITS (L=360/720)", 0.372, 0.395),
    ("SparseTSF (L=720)", 0.362, 0.388),
]


def _nas_cli() -> list[str]:
    return [sys.executable, "-m", "nas"]


def run_cli(data: str, lookback: int, horizon: int, seed: int, threads: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _nas_cli() + [
            "search", "--data", data, "--lookback", str(lookback), "--horizon", str(horizon),
            "--split", "ett", "--seed", str(seed), "--out", tmp, "--quiet", "--json",
        ]  # fmt: skip
        if threads is not None:
            cmd += ["--threads", str(threads)]
        t = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"nas search failed: {proc.stderr.strip()}")
        doc = json.loads(proc.stdout)
    return {
        "seed": seed,
        "horizon": horizon,
        "test_mse": doc["test_mse"],
        "test_mae": doc["test_mae"],
        "test_windows": doc["test_windows"],
        "params": doc["params"],
        "cell": doc["cell_text"],
        "search_s": doc["timings"]["search_s"],
        "retrain_s": doc["timings"]["retrain_s"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def random_cells(data_path: str, lookback: int, horizon: int, n: int, seed: int) -> dict:
    cfg = nas.SignalSearchConfig(lookback=lookback, horizon_len=horizon, seed=seed)
    data = nas.WindowedSeries(data_path, lookback, horizon, cfg.batch_size, split="ett")
    space = cfg.space()
    rng = np.random.default_rng(seed)
    rows = []
    t = time.perf_counter()
    for _ in range(n):
        cell = space.sample(rng)
        tc = nas.train_cell(cfg, data, cell)
        rows.append(
            {
                "cell": nas.format_cell(tc.arch.cell),
                "val_mse": tc.val_metrics["mse"],
                "test_mse": tc.test_metrics["mse"],
                "test_mae": tc.test_metrics["mae"],
                "params": tc.arch.total_params,
            }
        )
    best = min(rows, key=lambda r: r["val_mse"])
    return {"cells": rows, "best_by_val": best, "seconds": time.perf_counter() - t}


def step_times(lookback: int, horizon: int, features: int, reps: int) -> list[dict]:
    out = []
    native = nas.ops.mixed_op
    cfg = nas.SignalSearchConfig()
    for name, space in (("signal", cfg.space()), ("all8", nas.SearchSpace(4))):
        torch.manual_seed(0)
        model = nas.build_supernet_model(
            space, lookback=lookback, horizon=horizon, num_features=features,
            patch_len=cfg.patch_len, stride=cfg.stride, hidden=cfg.hidden_dim,
            num_layers=cfg.num_layers,
        )  # fmt: skip
        opt = nas.DARTSOptimizer(model, cfg.weight_lr, cfg.alpha_lr, alpha_optimizer="adam",
                                 weight_optimizer="adam")  # fmt: skip
        b = cfg.batch_size
        batch = [torch.randn(b, lookback, features), torch.randn(b, horizon, features)] * 2
        times: dict[str, list[float]] = {"fused": [], "reference": []}
        for _ in range(3):
            for variant, fn in (("fused", native), ("reference", _reference.mixed_op)):
                nas.ops.mixed_op = fn
                for m in model.modules():
                    if isinstance(m, nas.DARTSCell):
                        m.batched = variant == "fused"
                opt.step(*batch)
                for _ in range(reps):
                    t = time.perf_counter()
                    opt.step(*batch)
                    times[variant].append(time.perf_counter() - t)
        nas.ops.mixed_op = native
        f, r = min(times["fused"]), min(times["reference"])
        out.append(
            {
                "space": name,
                "rows": [
                    b * features,
                    nas.signal.num_patches(lookback, cfg.patch_len, cfg.stride),
                    cfg.hidden_dim,
                ],  # fmt: skip
                "fused_ms": f * 1e3,
                "reference_ms": r * 1e3,
                "fused_median_ms": statistics.median(times["fused"]) * 1e3,
                "reference_median_ms": statistics.median(times["reference"]) * 1e3,
                "speedup_min": r / f,
                "speedup_median": statistics.median(times["reference"])
                / statistics.median(times["fused"]),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join("..", "shared", "data", "ETTh1.csv"))
    ap.add_argument("--lookback", type=int, default=336)
    ap.add_argument("--horizons", default="96")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--random-cells", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--step-reps", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: cli,random,step")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if not os.path.isfile(args.data):
        raise SystemExit(f"{args.data} not found: pass --data PATH/ETTh1.csv (see its README)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    seeds = [int(s) for s in args.seeds.split(",")]
    doc: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                 "lookback": args.lookback, "runs": [], "random": {}, "step": []}  # fmt: skip
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, L={args.lookback}")
    for h in (int(v) for v in args.horizons.split(",")):
        if "cli" not in skip:
            runs = [run_cli(args.data, args.lookback, h, s, args.threads) for s in seeds]
            doc["runs"] += runs
            mse = [r["test_mse"] for r in runs]
            mae = [r["test_mae"] for r in runs]
            print(f"\nH={h}: nas search (CLI defaults), {len(runs)} seeds")
            print("| seed | test MSE | test MAE | params | search s | retrain s | wall s | CPU s "
                  "| cell |")  # fmt: skip
            print("|---|---|---|---|---|---|---|---|---|")
            for r in runs:
                print(f"| {r['seed']} | {r['test_mse']:.4f} | {r['test_mae']:.4f} | "
                      f"{r['params']:,} | {r['search_s']:.0f} | {r['retrain_s']:.0f} | "
                      f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | `{r['cell']}` |")  # fmt: skip
            sd = statistics.stdev(mse) if len(mse) > 1 else 0.0
            print(f"| mean +- sd | {statistics.mean(mse):.4f} +- {sd:.4f} | "
                  f"{statistics.mean(mae):.4f} | | | | | | |")  # fmt: skip
        if "random" not in skip and args.random_cells > 0:
            rnd = random_cells(args.data, args.lookback, h, args.random_cells, seeds[0])
            doc["random"][str(h)] = rnd
            b = rnd["best_by_val"]
            print(f"\nH={h}: {args.random_cells} random cells, trained like the searched one "
                  f"({rnd['seconds']:.0f} s)")  # fmt: skip
            tests = [c["test_mse"] for c in rnd["cells"]]
            print(f"best by val: test MSE {b['test_mse']:.4f} MAE {b['test_mae']:.4f} "
                  f"`{b['cell']}`; test MSE over the 10: min {min(tests):.4f}, "
                  f"median {statistics.median(tests):.4f}, max {max(tests):.4f}")  # fmt: skip
    if "step" not in skip:
        data = nas.WindowedSeries(args.data, args.lookback, 96, split="ett")
        doc["step"] = step_times(args.lookback, 96, data.num_features, args.step_reps)
        print("\nsearch step (DARTSOptimizer.step, first order), fused vs eager mixed op")
        print("| space | rows [B*F, N, D] | fused ms (min / median) | eager ms (min / median) "
              "| speedup (min / median) |")  # fmt: skip
        print("|---|---|---|---|---|")
        for r in doc["step"]:
            print(f"| {r['space']} | {r['rows']} | {r['fused_ms']:.1f} / "
                  f"{r['fused_median_ms']:.1f} | {r['reference_ms']:.1f} / "
                  f"{r['reference_median_ms']:.1f} | {r['speedup_min']:.2f}x / "
                  f"{r['speedup_median']:.2f}x |")  # fmt: skip
    print("\npublished (test MSE / MAE, H=96):")
    for name, mse, mae in PUBLISHED:
        print(f"  {name}: {mse} / {mae}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(nas._io.dumps_json(doc) + "\n")


if __name__ == "__main__":
    main()
