"""Where does the latency measurement's own error come from? (issue 12)

.venv/bin/python bench/latency_probe.py OUT.npz [--seed 1] [--rounds 120] [--cells 200]
.venv/bin/python bench/latency_probe.py OUT.npz --report     # analyse a saved probe
.venv/bin/python bench/latency_probe.py --orders system      # order / instance probe,
.venv/bin/python bench/latency_probe.py --orders keep        # one process per allocator

Runs the sample of ``nas calibrate --seed S`` (forward, [16, 64, 128], 1 thread) with
the protocol as it was before this probe (glibc's allocator as it is, no warm call) and
keeps every round's time, then probes the candidates the issue names, each on the
same cells:

* statistic: does the minimum of 60 rounds repeat worse than a low percentile?
  (even rounds vs odd rounds of one interleaved measurement, as ``nas calibrate``)
* instances: the same cells as new module instances (new weights, new input, new
  allocations) measured again: does a cell's latency depend on where its tensors sit?
* page faults: minor faults per call (getrusage) of each cell, after warm-up
* previous op: each cell timed back to back (warm caches) vs after a 32 MiB sweep
  that evicts the caches (the worst predecessor), vs the interleaved rounds.

``--orders ALLOCATOR`` (glibc's allocator as it is, or ``keep``: freed memory kept in the
process, ``nas.calibrate.keep_freed_memory``; the setting lasts, so one process each):
the same 200 cells timed three times, 40 rounds each: A, then B in another random
order (same modules), then C as new modules (other weights, input, allocations) in A's
order; without and with one untimed call before each timed call (``warm_calls``);
minor page faults per timed call; agreement within +-10% of A's halves, A vs B, A vs C.

Meant for a quiet machine (load average below 1); prints the load before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from nas.calibrate import TimingProtocol, _make_step, sample_cells, time_cells
from nas.signal_ops import CellModule
from nas.space import SearchSpace

SHAPE = (16, 64, 128)
# the protocol before issue 12 found the allocator: glibc as it is, no warm call
OLD = TimingProtocol(allocator="system", warm_calls=0)


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
    times, info = time_cells(cells, "cpu", SHAPE, "forward", OLD, rounds=rounds, seed=seed)
    print(f"interleaved: {time.perf_counter() - t0:.0f} s")
    # the same cells, new instances: other weights, input and allocations
    times_b, _ = time_cells(cells, "cpu", SHAPE, "forward", OLD, rounds=rounds, seed=seed + 1000)
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


def orders(allocator: str, n: int = 200, rounds: int = 40) -> None:
    from nas.calibrate import keep_freed_memory

    torch.set_num_threads(1)
    if allocator == "keep":
        print("keep_freed_memory:", keep_freed_memory())
    cells = sample_cells(SearchSpace(4), n, 1)

    def run(seed: int, order_seed: int, warm: int) -> tuple[np.ndarray, np.ndarray]:
        torch.manual_seed(seed)
        x = torch.randn(*SHAPE)
        steps = [_make_step(CellModule(c, SHAPE[2]), x, "forward") for c in cells]
        for s in steps:
            s(), s(), s()
        rng = np.random.default_rng(order_seed)
        t, flt = np.empty((len(cells), rounds)), np.zeros(len(cells))
        for r in range(rounds):
            for i in rng.permutation(len(cells)).tolist():
                for _ in range(warm):
                    steps[i]()
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                steps[i]()
                t[i, r] = time.perf_counter() - t0
                flt[i] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        return t, flt / rounds

    print("load", os.getloadavg())
    for warm in (0, 1):
        t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        a, fa = run(1, 1, warm)
        b, _ = run(1, 2, warm)
        c, _ = run(1001, 1, warm)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"warm_calls={warm}: {time.perf_counter() - t0:.0f} s "
            f"(sys {r1.ru_stime - r0.ru_stime:.1f} s)"
            f", faults per timed call: median {np.median(fa):.1f}, max {fa.max():.1f}"
        )
        for s in ("min", "p10", "p25", "median"):
            half = 100 * within(stat(a[:, 0::2], s), stat(a[:, 1::2], s))
            order = 100 * within(stat(a, s), stat(b, s))
            inst = 100 * within(stat(a, s), stat(c, s))
            print(
                f"  {s:6s} within +-10%: halves {half:5.1f}%, other order {order:5.1f}%, "
                f"new instances {inst:5.1f}%; median cell {1e3 * np.median(stat(a, s)):.3f} ms"
            )
    print("load", os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--orders", choices=["system", "keep"], default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=120)
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    if a.orders:
        orders(a.orders)
        return
    if not a.report:
        probe(a.out, a.seed, a.rounds, a.cells)
    report(a.out)


if __name__ == "__main__":
    main()
