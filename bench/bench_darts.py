"""One DARTS search step on a SuperNet: the fused mixed op vs the eager reference.

A step is DARTSOptimizer.step (first order): forward + backward on the training
batch, an SGD step on the weights, forward + backward on the validation batch, a
step on alpha. Both variants run side by side in one process on the same model and
data, alternating, and the minimum over repetitions is compared (the machine is
shared: the minimum is the run least disturbed). Only ``nas.ops.mixed_op`` differs:
the native op, or the pure-PyTorch reference ``nas.ops._reference.mixed_op`` (what
quark0/darts computes).

    flock /tmp/nas-bench.lock .venv/bin/python bench/bench_darts.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    for space_name, ops in SPACES.items():
        for B, N, D in shapes:
            if space_name == "all8" and B * N * D > 2_000_000:
                continue  # minutes per step on a 2-core machine
            torch.manual_seed(0)
            space = nas.SearchSpace(4, ops)
            net = nas.SuperNet(space, D, num_layers=1)
            opt = nas.DARTSOptimizer(net, 0.025, 3e-4, alpha_optimizer="adam")
            data = [torch.randn(B, N, D) for _ in range(4)]
            reps = 3 if B * N * D > 2_000_000 else 7
            times: dict[str, list[float]] = {"fused": [], "reference": []}
            for _ in range(2):  # alternate, after a warm-up of each
                for name, fn in (("fused", native), ("reference", _reference.mixed_op)):
                    nas.ops.mixed_op = fn
                    opt.step(*data)
                    times[name] += _time_step(opt, data, reps)
            nas.ops.mixed_op = native
            f, r = min(times["fused"]), min(times["reference"])
            fm, rm = statistics.median(times["fused"]), statistics.median(times["reference"])
            rows.append(
                {
                    "space": space_name,
                    "shape": [B, N, D],
                    "fused_ms": round(f * 1e3, 2),
                    "reference_ms": round(r * 1e3, 2),
                    "speedup": round(r / f, 2),
                    "fused_median_ms": round(fm * 1e3, 2),
                    "reference_median_ms": round(rm * 1e3, 2),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the largest shape")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if not hasattr(torch.ops.nas, "mixed_op"):
        raise SystemExit("the native nas::mixed_op is not built: nothing to compare")
    rows = run(args.quick)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        "| space | [B, N, D] | fused step ms (min / median) | reference step ms (min / median) "
        "| speedup (min) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['space']} | {r['shape']} | {r['fused_ms']} / {r['fused_median_ms']} | "
            f"{r['reference_ms']} / {r['reference_median_ms']} | {r['speedup']}x |"
        )


if __name__ == "__main__":
    main()
