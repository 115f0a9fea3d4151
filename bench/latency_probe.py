"""Where does the latency measurement's own error come from? (issue 12)

.venv/bin/python bench/latency_probe.py OUT.npz [--seed 1] [--rounds 120] [--cells 200]
.venv/bin/python bench/latency_probe.py OUT.npz --report     # analyse a saved probe

Runs the sample of ``nas calibrate --seed S`` (forward, [16, 64, 128], 1 thread) and
keeps every round's time, then probes the candidates the issue names, each on the
same cells:

* statistic: does the minimum of 60 rounds repeat worse than a low percentile?
  (even rounds vs odd rounds of one interleaved measurement, as ``nas calibrate``)
* instances: the same cells as new module instances (new weights, new input, new
  allocations) measured again: does a cell's latency depend on where its tensors sit?
* page faults: minor faults per call (getrusage) of each cell, after warm-up
* previous op: each cell timed back to back (warm caches) vs after a 32 MiB sweep
  that evicts the caches (the worst predecessor), vs the interleaved rounds.

Meant for a quiet machine (load average below 1); prints the load before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from nas.calibrate import _make_step, sample_cells, time_cells
from nas.signal_ops import CellModule
from nas.space import SearchSpace

SHAPE = (16, 64, 128)


def within(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(b - a) <= 0.1 * np.abs(a)))


def stat(t: np.ndarray, name: str) -> np.ndarray:
    if name == "min":
        return t.min(axis=1)
    if name == "median":
        return np.median(t, axis=1)
    return np.percentile(t, float(name[1:]), axis=1)


def per_call(cells, seed: int, warm: int = 3, calls: int = 20) -> dict[str, np.ndarray]:
    """faults per call, back-to-back min, after-sweep min: each cell on its own."""
    torch.manual_seed(seed)
    x = torch.randn(*SHAPE)
    sweep = torch.empty(8 * 1024 * 1024)  # 32 MiB > L3 (32 MiB shared) + L2
    faults, b2b, cold = [], [], []
    for c in cells:
        step = _make_step(CellModule(c, SHAPE[2]), x, "forward")
        for _ in range(warm):
            step()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        ts = []
        for _ in range(calls):
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / calls)
        b2b.append(min(ts))
        ts = []
        for _ in range(calls):
            sweep.add_(1.0)  # touch 32 MiB: caches now hold the sweep, not the cell
            t0 = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t0)
        cold.append(min(ts))
    return {"faults": np.array(faults), "b2b": np.array(b2b), "cold": np.array(cold)}


def probe(out: str, seed: int, rounds: int, n: int) -> None:
    torch.set_num_threads(1)
    space = SearchSpace(4)
    cells = sample_cells(space, n, seed)
    print("load", os.getloadavg())
    t0 = time.perf_counter()
    times, info = time_cells(cells, "cpu", SHAPE, "forward", rounds=rounds, seed=seed)
    print(f"interleaved: {time.perf_counter() - t0:.0f} s")
    # the same cells, new instances: other weights, input and allocations
    times_b, _ = time_cells(cells, "cpu", SHAPE, "forward", rounds=rounds, seed=seed + 1000)
    print(f"second instances: {time.perf_counter() - t0:.0f} s")
    pc = per_call(cells, seed)
    print(f"per call probes: {time.perf_counter() - t0:.0f} s; load", os.getloadavg())
    codes = np.array([space.codes(c) for c in cells])
    np.savez(out, times=times, times_b=times_b, codes=codes, numbers=info["numbers"], **pc)


def report(path: str) -> None:
    d = np.load(path)
    t, tb = d["times"], d["times_b"]
    print(f"{t.shape[0]} cells x {t.shape[1]} rounds")
    print("\nrepeat within +-10% (even vs odd rounds, same instances), by statistic:")
    for s in ("min", "p5", "p10", "p25", "median"):
        a, b = stat(t[:, 0::2], s), stat(t[:, 1::2], s)
        med = np.median(np.abs(b - a) / a)
        print(f"  {s:7s} {100 * within(a, b):5.1f}%   median |diff| {100 * med:.2f}%")
    print("\nsame cells, new instances (all rounds each), by statistic:")
    for s in ("min", "p10", "median"):
        a, b = stat(t, s), stat(tb, s)
        med = np.median(np.abs(b - a) / a)
        print(f"  {s:7s} {100 * within(a, b):5.1f}%   median |diff| {100 * med:.2f}%")
    lat = t.min(axis=1)
    rel = np.abs(t[:, 1::2].min(axis=1) - t[:, 0::2].min(axis=1)) / lat
    noisy = np.argsort(-rel)[:12]
    print("\nnoisiest cells (even vs odd min): codes, min ms, rel diff, min/p10/median, faults")
    for i in noisy:
        row = t[i]
        print(
            f"  {' '.join(map(str, d['codes'][i]))}  {1e3 * lat[i]:7.3f}  {100 * rel[i]:5.1f}%"
            f"  p10/min {np.percentile(row, 10) / row.min():.3f}"
            f"  med/min {np.median(row) / row.min():.3f}  faults {d['faults'][i]:.0f}"
            f"  n {d['numbers'][i]}"
        )
    print("\nprevious op: interleaved min vs back-to-back min vs after a 32 MiB sweep")
    b2b, cold = d["b2b"], d["cold"]
    print(f"  interleaved/back-to-back: median {np.median(lat / b2b):.3f}")
    print(
        f"  after sweep/back-to-back: median {np.median(cold / b2b):.3f}  "
        f"p90 {np.percentile(cold / b2b, 90):.3f}"
    )
    print(f"  faults per call: median {np.median(d['faults']):.1f} max {d['faults'].max():.1f}")
    print(f"  corr(faults, rel diff) {np.corrcoef(d['faults'], rel)[0, 1]:.3f}")
    big = lat > 1e-3
    print(
        f"  rel diff, cells > 1 ms: median {100 * np.median(rel[big]):.2f}%, "
        f"<= 1 ms: {100 * np.median(rel[~big]):.2f}%"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=120)
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    if not a.report:
        probe(a.out, a.seed, a.rounds, a.cells)
    report(a.out)


if __name__ == "__main__":
    main()
