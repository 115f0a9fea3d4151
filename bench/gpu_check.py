"""Every nas CUDA op against its CPU kernel and reference, in one command.

For a lent GPU (an H200: Python 3.12, torch 2.11 + CUDA 13.0, no package registry, no
``gguf``). The script builds nothing; build first, against the machine's own torch:

    pip install --no-build-isolation --no-deps .
    PYTHONUNBUFFERED=1 python bench/gpu_check.py            # ~1-3 min on an H200

What it runs (device = cuda):
- decode_cells (``nas.ops.decode_cells``): small, odd and past-one-grid sizes
  (> 65535 * 8 blocks of 256 threads), vs the CPU kernel and a mixed-radix reference.
- enumeration through the public API only (``nas.score_cells``, ``nas.top_k_cells``,
  ``nas.count_cells``, ``nas.score_histogram``, ``nas.pareto_front``): small, odd and
  > 2**31-cell ranges starting past 2**32, device vs CPU kernel (exact: the arithmetic
  is shared bit for bit) and, on small ranges, vs a brute-force reference here.
- ``nas.ops.mixed_op`` and its backward (every output_mask), float32 / float64 /
  bfloat16 / float16, contiguous and [B, D, N] conv-layout param outputs, small, odd
  and past-one-grid sizes (forward grid: 2**20 blocks of 256), vs the CPU kernel and
  the float64 reference (nas.ops.mixed_op.TOLERANCES).
- the cell filters (connected_only, distinct) in every enumerate op, with and without
  prune_dead, k across the CUDA top-k's list sizes: device vs CPU kernel vs reference.
- every device op twice: bitwise identical (determinism).
- timings: the mixed op's bytes moved per second against the device's measured copy
  bandwidth (``y.copy_(x)`` moving the same bytes), and the enumeration scan in cells/s.

Prints two markdown tables (checks, timings) for bench/RESULTS.md; exit status 1 on any
mismatch, 2 when the build has no CUDA kernels (non-dry).

``--dry-run`` (automatic without CUDA): the same comparisons on the CPU path (device =
cpu) at reduced sizes, in well under a minute: CI runs it so the script cannot rot.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

import torch

import nas
from nas.ops import _reference, mixed_op
from nas.ops.mixed_op import TOLERANCES

ALL = [op.value for op in nas.all_ops()]
SIGNAL = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
HALF = (torch.bfloat16, torch.float16)
GOAL_SCAN = "goal on an H200: >= 5e10"


class Report:
    def __init__(self) -> None:
        self.checks: list[tuple[str, str, bool, str]] = []
        self.timings: list[tuple[str, str, str, str]] = []

    def check(self, name: str, size: str, fn: Callable[[], str | None]) -> None:
        t0 = time.perf_counter()
        try:
            detail = fn() or ""
            ok = True
        except Exception as exc:  # noqa: BLE001 (any failure is a failed check)
            ok = False
            detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            traceback.print_exc(file=sys.stderr)
        detail = f"{detail} ({time.perf_counter() - t0:.1f} s)".strip()
        self.checks.append((name, size, ok, detail))
        print(f"[{'ok' if ok else 'FAIL'}] {name} {size}: {detail}", flush=True)

    @property
    def failed(self) -> int:
        return sum(not ok for _, _, ok, _ in self.checks)

    def markdown(self, header: str) -> str:
        lines = [header, "", "| check | sizes | result | detail |", "|---|---|---|---|"]
        for name, size, ok, detail in self.checks:
            lines.append(f"| {name} | {size} | {'pass' if ok else '**FAIL**'} | {detail} |")
        if self.timings:
            lines += ["", "| timing | size | figure | against |", "|---|---|---|---|"]
            lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.timings]
        return "\n".join(lines)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time_s(fn: Callable[[], object], device: str, reps: int = 10) -> float:
    """Median seconds of fn() (after a warm-up), device-synchronised."""
    fn()
    _sync(device)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _equal(a: object, b: object, what: str) -> None:
    """Bitwise equality of tensors / nested tuples (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor):
        a, b = a.cpu(), b.cpu()
        same = a.shape == b.shape and a.dtype == b.dtype
        if same and a.is_floating_point():
            same = bool(((a == b) | (a.isnan() & b.isnan())).all())
        elif same:
            same = torch.equal(a, b)
        if not same:
            raise AssertionError(f"{what}: tensors differ ({tuple(a.shape)} vs {tuple(b.shape)})")
        return
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            raise AssertionError(f"{what}: lengths {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{what}[{i}]")
        return
    if hasattr(a, "__dataclass_fields__"):
        for f in a.__dataclass_fields__:
            _equal(getattr(a, f), getattr(b, f), f"{what}.{f}")
        return
    if a != b:
        raise AssertionError(f"{what}: {a!r} vs {b!r}")


# ------------------------------------------------------------------ decode_cells
def check_decode(rep: Report, device: str, dry: bool) -> None:
    big = 1 << 16 if dry else 65535 * 8 * 256 + 7  # past the kernel's grid cap
    for n, K, E in ((7, 8, 6), (97, 5, 21), (big, 8, 3)):
        g = torch.Generator().manual_seed(n)
        hi = min(K**E, 2**62)
        idx = (torch.rand(n, generator=g, dtype=torch.float64) * hi).to(torch.int64)
        idx[0], idx[-1] = 0, K**E - 1

        def run(idx=idx, K=K, E=E, n=n) -> str:
            got = nas.ops.decode_cells(idx.to(device), K, E)
            cpu = nas.ops.decode_cells(idx, K, E)
            _equal(got, cpu, "device vs CPU kernel")
            _equal(nas.ops.decode_cells(idx.to(device), K, E), got, "rerun")
            if n <= 1 << 16:
                w = torch.tensor([K ** (E - 1 - e) for e in range(E)], dtype=torch.int64)
                _equal(cpu, (idx[:, None] // w) % K, "CPU kernel vs mixed-radix reference")
            return "bitwise equal to the CPU kernel" + (" and the reference" if n <= 65536 else "")

        rep.check("decode_cells", f"n={n}, {K} ops, {E} edges", run)


# ------------------------------------------------------------------ enumeration
def _brute(space: nas.SearchSpace, table: torch.Tensor, coeffs: torch.Tensor, bias: float,
           start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Features and scores of cells [start, start + count) by decoding every index."""
    K, E = space.num_ops, space.num_edges
    idx = torch.arange(start, start + count, dtype=torch.int64)
    feats = torch.zeros(count, table.shape[1], dtype=torch.float64)
    for e in range(E):
        feats += table[(idx // K ** (E - 1 - e)) % K]
    return feats, bias + feats @ coeffs


def check_enumerate(rep: Report, device: str, dry: bool) -> None:
    s5, s6 = nas.SearchSpace(5), nas.SearchSpace(6)  # 2**30 and 2**45 cells
    coeffs_np, bias = nas.latency_coeffs(nas.h200())
    table = torch.from_numpy(nas.op_feature_table(s6.ops))
    coeffs = torch.from_numpy(coeffs_np)
    cons = {2: (None, 50_000)}
    # past 2**32 and (non-dry) more than 2**31 cells in one call of the public API
    big_start, big_count = 2**33 + 5, (2**24 + 3 if dry else 2**31 + 4097)
    sizes = [(s5, 0, 97), (s5, 123_457, 20_011), (s6, 2**32 - 1_000, 50_000)]

    for space, start, count in sizes:
        label = f"{space.num_nodes} nodes, [{start}, +{count})"

        def scores(space=space, start=start, count=count) -> str:
            got = nas.score_cells(space, table, coeffs, bias=bias, start=start, count=count,
                                  device=device)  # fmt: skip
            cpu = nas.score_cells(space, table, coeffs, bias=bias, start=start, count=count)
            _equal(got, cpu, "device vs CPU kernel")
            f_ref, s_ref = _brute(space, table, coeffs, bias, start, count)
            torch.testing.assert_close(cpu[0], f_ref, rtol=1e-12, atol=0)
            torch.testing.assert_close(cpu[1], s_ref, rtol=1e-12, atol=1e-18)
            return "bitwise = CPU kernel; CPU kernel = brute force (rtol 1e-12)"

        rep.check("score_cells", label, scores)

        def topk(space=space, start=start, count=count) -> str:
            kw = dict(bias=bias, start=start, count=count)
            for largest, c in itertools.product((False, True), (None, cons)):
                got = nas.top_k_cells(space, table, coeffs, 10, c, largest=largest,
                                      device=device, **kw)  # fmt: skip
                cpu = nas.top_k_cells(space, table, coeffs, 10, c, largest=largest, **kw)
                _equal(got, cpu, f"device vs CPU (largest={largest}, constraints={c})")
                f_ref, s_ref = _brute(space, table, coeffs, bias, start, count)
                ok = torch.ones(count, dtype=torch.bool)
                for col, (lo, hi) in (c or {}).items():
                    if lo is not None:
                        ok &= f_ref[:, col] >= lo
                    if hi is not None:
                        ok &= f_ref[:, col] <= hi
                idx = torch.arange(start, start + count)[ok]
                # ties to the lower index: a stable sort of the index-ordered cells
                order = torch.sort(s_ref[ok], stable=True, descending=largest).indices[:10]
                _equal(cpu.indices, idx[order], "CPU top-k indices vs brute force")
            return "4 variants (smallest/largest x constraints): device = CPU = brute force"

        rep.check("top_k_cells", label, topk)

    # A params budget that about a third of the cells past big_start meet (the first
    # edges there hold convolutions, so the small-space budget would keep none).
    sample = nas.score_cells(s6, table, coeffs, bias=bias, start=big_start, count=1 << 16)[0]
    cons = {2: (None, float(torch.quantile(sample[:, 2], 0.3)))}

    def scan(count: int, prune: bool) -> Callable[[], str]:
        def run() -> str:
            kw = dict(start=big_start, count=count, prune_dead=prune)
            t0 = time.perf_counter()
            got = nas.top_k_cells(s6, table, coeffs, 10, cons, bias=bias, device=device, **kw)
            cnt = nas.count_cells(s6, table, cons, device=device, **kw)
            t_dev = time.perf_counter() - t0
            again = nas.count_cells(s6, table, cons, device=device, **kw)
            t0 = time.perf_counter()
            cpu = nas.top_k_cells(s6, table, coeffs, 10, cons, bias=bias, **kw)
            cnt_cpu = nas.count_cells(s6, table, cons, **kw)
            t_cpu = time.perf_counter() - t0
            _equal(got, cpu, "top-k device vs CPU")
            _equal(cnt, cnt_cpu, "count device vs CPU")
            _equal(again, cnt, "count rerun")
            return (
                f"top-10 + count: device = CPU kernel (device {t_dev:.2f} s, CPU {t_cpu:.2f} s); "
                f"{cnt.count} qualify, {cnt.distinct} distinct"
            )

        return run

    mid = 2**22 if dry else 2**28 + 11
    over = "" if dry else " (> 2**31 cells)"
    rep.check("top_k_cells + count_cells", f"6 nodes, [{big_start}, +{big_count}){over}",
              scan(big_count, False))  # fmt: skip
    rep.check("top_k_cells + count_cells, prune_dead", f"6 nodes, [{big_start}, +{mid})",
              scan(mid, True))  # fmt: skip

    def hist_pareto() -> str:
        kw = dict(start=big_start, count=mid)
        h = nas.score_histogram(s6, table, coeffs, 16, None, cons, bias=bias, device=device, **kw)
        _equal(h, nas.score_histogram(s6, table, coeffs, 16, None, cons, bias=bias, **kw), "hist")
        objs = [coeffs, 2]
        p = nas.pareto_front(s6, table, objs, cons, device=device, **kw)
        _equal(p, nas.pareto_front(s6, table, objs, cons, **kw), "pareto")
        return f"histogram and Pareto front ({len(p.indices)} points): device = CPU kernel"

    rep.check("score_histogram + pareto_front", f"6 nodes, [{big_start}, +{mid})", hist_pareto)
    rep.check("filters (connected_only, distinct)", "5 nodes, [123457, +200003)",
              lambda: _filters(s5, table, coeffs, bias, device))  # fmt: skip


def _filters(space: nas.SearchSpace, table: torch.Tensor, coeffs: torch.Tensor, bias: float,
             device: str) -> str:  # fmt: skip
    """The cell filters in every op, with and without prune_dead, k across the CUDA
    kernel's list sizes (1, 4, 16, 64 entries): device vs CPU kernel, and the CPU
    kernel's top-k vs the numpy reference (nas.ops._reference)."""
    start, count = 123_457, 200_003
    cons = {2: (None, 50_000)}
    zero = space.ops.index(nas.OpType.ZERO)
    low = torch.full((3,), -float("inf"), dtype=torch.float64)
    high = torch.tensor([float("inf"), float("inf"), 50_000.0], dtype=torch.float64)
    for prune, co, di in itertools.product((False, True), repeat=3):
        kw = dict(start=start, count=count, prune_dead=prune, connected_only=co, distinct=di)
        what = f"prune_dead={prune}, connected_only={co}, distinct={di}"
        for k, largest in itertools.product((1, 3, 10, 17, 64), (False, True)):
            got = nas.top_k_cells(space, table, coeffs, k, cons, bias=bias, largest=largest,
                                  device=device, **kw)  # fmt: skip
            cpu = nas.top_k_cells(space, table, coeffs, k, cons, bias=bias, largest=largest, **kw)
            _equal(got, cpu, f"top-{k} device vs CPU ({what}, largest={largest})")
            if k == 17:
                args = (low, high, space.num_nodes, zero, prune, start, count, k, largest, co, di)
                ref = _reference.enumerate_top_k(table, coeffs, bias, *args)
                _equal((cpu.indices, cpu.scores, cpu.features), ref, f"CPU vs reference ({what})")
        cnt = nas.count_cells(space, table, cons, device=device, **kw)
        _equal(cnt, nas.count_cells(space, table, cons, **kw), f"count ({what})")
        h = nas.score_histogram(space, table, coeffs, 9, None, cons, bias=bias, device=device,
                                **kw)  # fmt: skip
        _equal(h, nas.score_histogram(space, table, coeffs, 9, None, cons, bias=bias, **kw),
               f"histogram ({what})")  # fmt: skip
        p = nas.pareto_front(space, table, [coeffs, 2], cons, device=device, **kw)
        _equal(p, nas.pareto_front(space, table, [coeffs, 2], cons, **kw), f"pareto ({what})")
    return (
        "8 filter x prune_dead variants, top-k (k = 1..64) / count / histogram / pareto: "
        "device = CPU kernel = reference"
    )


def time_enumerate(rep: Report, device: str, dry: bool) -> None:
    """The scan in cells/s: top-10 under a params constraint over the 5-node space
    (2**30 cells), then a window of the 6-node space sized to take about a second."""
    s5, s6 = nas.SearchSpace(5), nas.SearchSpace(6)
    coeffs_np, bias = nas.latency_coeffs(nas.h200())
    table = torch.from_numpy(nas.op_feature_table(s5.ops))
    cons = {2: (None, 50_000)}
    n5 = 2**24 if dry else s5.num_cells()
    t = _time_s(lambda: nas.top_k_cells(s5, table, coeffs_np, 10, cons, bias=bias, count=n5,
                                        device=device), device, reps=3)  # fmt: skip
    rep.timings.append(("enumeration scan (top-10, params <= 50k)", f"5 nodes, {n5} cells",
                        f"{n5 / t:.3g} cells/s ({t * 1e3:.1f} ms)", GOAL_SCAN))  # fmt: skip
    n6 = min(max(int(n5 / t), 2**20), 2**36)  # about one second's worth
    t = _time_s(lambda: nas.top_k_cells(s6, table, coeffs_np, 10, cons, bias=bias, start=2**33,
                                        count=n6, device=device), device, reps=2)  # fmt: skip
    rep.timings.append(("enumeration scan (top-10, params <= 50k)", f"6 nodes, {n6} cells",
                        f"{n6 / t:.3g} cells/s ({t * 1e3:.1f} ms)", GOAL_SCAN))  # fmt: skip


# ------------------------------------------------------------------ mixed op
def _mixed_inputs(shape, ops, dtype, device, dn, seed):  # noqa: ANN001, ANN202
    g = torch.Generator().manual_seed(seed)
    B, N, D = shape
    x = torch.randn(shape, generator=g).to(dtype)
    alpha = torch.randn(len(ops), generator=g).to(torch.float32 if dtype in HALF else dtype)
    params = []
    for op in ops:
        if op in _PARAMETRIC:
            p = torch.randn(B, D, N, generator=g).to(dtype)
            params.append(p.transpose(1, 2) if dn else p.transpose(1, 2).contiguous())
    if device != "cpu":
        x, alpha = x.to(device), alpha.to(device)
        params = [p.to(device) for p in params]  # .to keeps the [B, D, N] layout
    return x, alpha, params


_PARAMETRIC = {"conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5"}


def _fwd_bwd(fn, x, alpha, ops, params, cot):  # noqa: ANN001, ANN202
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, alpha, *params)]
    y = fn(leaves[0], leaves[1], ops, leaves[2:])
    grads = torch.autograd.grad(y, leaves, cot)
    return [y.detach(), *grads]


def _close(got, want, dtype, what):  # noqa: ANN001, ANN202
    """Device vs CPU kernel: same algorithm, other summation order (and, for half
    types, possibly the other side of one final rounding)."""
    tol = {torch.float64: (1e-12, 1e-12), torch.float32: (1e-5, 1e-5),
           torch.bfloat16: (2**-7, 1e-5), torch.float16: (2**-10, 1e-5)}[dtype]  # fmt: skip
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        torch.testing.assert_close(a.cpu(), b.cpu(), rtol=tol[0], atol=tol[1],
                                   msg=lambda m, i=i: f"{what}[{i}]: {m}")  # fmt: skip


def _within_ref(got, x, alpha, ops, params, cot):  # noqa: ANN001, ANN202
    """CPU kernel vs the float64 reference on the same inputs: TOLERANCES' rule."""
    tol = TOLERANCES[x.dtype]
    up = [t.double() for t in (x, alpha, *params)]
    ref = _fwd_bwd(_reference.mixed_op, up[0], up[1], ops, up[2:], cot.double())
    low = _fwd_bwd(_reference.mixed_op, x, alpha, ops, params, cot) if tol.lowprec else ref
    for i, (a, r, lo) in enumerate(zip(got, ref, low, strict=True)):
        err = (a.double() - r).abs()
        bound = tol.atol + tol.rtol * r.abs() + tol.lowprec * (lo.double() - r).abs()
        if bool((err > bound).any()):
            raise AssertionError(f"output {i}: {int((err > bound).sum())} elements past the "
                                 f"{x.dtype} tolerance vs the float64 reference")  # fmt: skip


def check_mixed_op(rep: Report, device: str, dry: bool) -> None:
    big = (64, 64, 128) if dry else (8192, 256, 130)  # 2.7e8 elements, 327,680 tiles
    # The kernels walk 32 x 32 tiles of [N, D] per batch row, grid-stride past 2**20
    # blocks (forward) and 1,024 (backward): 2**20 + 3 one-row tiles pass both.
    many = (1 << 20) + 3, 1, 3
    cases = [((2, 5, 3), "small"), ((3, 97, 19), "odd"), ((224, 42, 16), "DARTS"), (big, "large"),
             (many, "tiles")]  # fmt: skip
    if dry:
        cases = [c for c in cases if c[1] not in ("DARTS", "tiles")]
    for (shape, kind), dtype in itertools.product(
        cases, (torch.float32, torch.float64, torch.bfloat16, torch.float16)
    ):
        if kind in ("large", "tiles") and dtype != torch.float32:
            continue
        for ops in (ALL, SIGNAL) if kind not in ("large", "tiles") else (ALL,):

            def run(shape=shape, dtype=dtype, ops=ops, kind=kind) -> str:
                notes = []
                for dn in (False, True) if len(ops) == len(ALL) else (False,):
                    x, a, ps = _mixed_inputs(shape, ops, dtype, device, dn, seed=shape[1])
                    cot = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
                    got = _fwd_bwd(mixed_op, x, a, ops, ps, cot.to(device))
                    cpu_in = [t.cpu() for t in (x, a, *ps)]
                    cpu = _fwd_bwd(mixed_op, cpu_in[0], cpu_in[1], ops, cpu_in[2:], cot)
                    _close(got, cpu, dtype, "device vs CPU kernel")
                    again = _fwd_bwd(mixed_op, x, a, ops, ps, cot.to(device))
                    _equal(again, got, "rerun")
                    if kind not in ("large", "tiles"):
                        _within_ref(cpu, cpu_in[0], cpu_in[1], ops, cpu_in[2:], cot)
                    codes = [ALL.index(o) for o in ops]
                    for mask in itertools.product((False, True), repeat=3):
                        out = torch.ops.nas.mixed_op_backward(cot.to(device), x, a, codes, ps,
                                                              list(mask))  # fmt: skip
                        for j, m in enumerate(mask[:2]):
                            if m:
                                _equal(out[j], got[1 + j], f"mask {mask} output {j}")
                        if mask[2]:
                            _equal(list(out[2]), got[3:], f"mask {mask} param grads")
                    notes.append("dn" if dn else "contiguous")
                vs_ref = kind not in ("large", "tiles")
                ref = "; CPU kernel within TOLERANCES of float64 ref" if vs_ref else ""
                return (f"{'/'.join(notes)} params: device ~ CPU kernel, rerun bitwise, "
                        f"8 output masks{ref}")  # fmt: skip

            name = f"mixed_op fwd+bwd {dtype}".replace("torch.", "")
            rep.check(name, f"{kind} {list(shape)}, {len(ops)} ops", run)


def time_mixed_op(rep: Report, device: str, dry: bool) -> None:
    """Bytes the op must move per second vs a plain copy moving the same bytes."""
    for shape in ((64, 42, 64),) if dry else ((896, 64, 128), (8192, 64, 128)):
        for ops in (SIGNAL, ALL):
            x, a, ps = _mixed_inputs(shape, ops, torch.float32, device, dn=True, seed=0)
            codes = [ALL.index(o) for o in ops]
            g = torch.randn_like(x)
            n, P, e = x.numel(), len(ps), x.element_size()
            fwd_bytes = (1 + P + 1) * n * e  # read x, P params; write y
            bwd_bytes = (2 + P + 1 + P) * n * e  # read g, x, P params; write dx, P grads
            t_f = _time_s(lambda x=x, a=a, ps=ps, c=codes: torch.ops.nas.mixed_op(x, a, c, ps),
                          device)  # fmt: skip
            t_b = _time_s(lambda g=g, x=x, a=a, ps=ps, c=codes:
                          torch.ops.nas.mixed_op_backward(g, x, a, c, ps), device)  # fmt: skip
            for what, t, nbytes in (("forward", t_f, fwd_bytes), ("backward", t_b, bwd_bytes)):
                src = torch.ones(nbytes // 2 // 4, dtype=torch.float32, device=device)
                dst = torch.zeros_like(src)
                t_c = _time_s(lambda s=src, d=dst: d.copy_(s), device)
                bw, bw_c = nbytes / t, nbytes / t_c
                rep.timings.append((
                    f"mixed_op {what}, {len(ops)} ops, float32" + (", dn params" if P else ""),
                    str(list(shape)),
                    f"{bw / 1e9:.1f} GB/s ({t * 1e3:.3f} ms)",
                    f"copy of the same bytes {bw_c / 1e9:.1f} GB/s: **{100 * bw / bw_c:.0f}%** "
                    "(goal on an H200: >= 70%)",
                ))  # fmt: skip
                del src, dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU path at reduced sizes (automatic without CUDA)")  # fmt: skip
    ap.add_argument("--skip-timings", action="store_true")
    args = ap.parse_args()
    dry = args.dry_run or not torch.cuda.is_available()
    device = "cpu" if dry else "cuda"
    info = nas.build_info()
    if not nas.has_native():
        print("gpu_check: nas._C is not built: pip install --no-build-isolation --no-deps .")
        return 2
    if not dry and "cuda" not in info.get("backends", []):
        print(f"gpu_check: this nas build has no CUDA kernels ({info}); rebuild on this machine "
              "with nvcc on PATH: pip install --no-build-isolation --no-deps .")  # fmt: skip
        return 2
    if dry:
        torch.set_num_threads(min(torch.get_num_threads(), 2))
    t0 = time.perf_counter()
    rep = Report()
    where = "CPU only, dry run (reduced sizes)" if dry else torch.cuda.get_device_name()
    print(f"gpu_check on {where}: torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"Python {sys.version.split()[0]}, nas {info}", flush=True)  # fmt: skip
    check_decode(rep, device, dry)
    check_enumerate(rep, device, dry)
    check_mixed_op(rep, device, dry)
    rep.check("import nas without gguf", "-", _no_gguf)
    if not args.skip_timings:
        time_mixed_op(rep, device, dry)
        time_enumerate(rep, device, dry)
    header = (f"gpu_check ({where}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
              f"{time.perf_counter() - t0:.0f} s): {len(rep.checks) - rep.failed} of "
              f"{len(rep.checks)} checks passed")  # fmt: skip
    print()
    print(rep.markdown(header))
    return 1 if rep.failed else 0


def _no_gguf() -> str:
    # The lent machine has no gguf package: nothing here may have needed it, and nas
    # imports and runs its ops with gguf made unimportable.
    if "gguf" in sys.modules:
        raise AssertionError("gguf was imported (import nas must not need it)")
    code = (
        "import sys; sys.modules['gguf'] = None\n"
        "import torch, nas\n"
        "from nas.ops import mixed_op\n"
        "mixed_op(torch.randn(2, 5, 3), torch.zeros(2), ['skip_connect', 'zero'])\n"
        "nas.top_k_cells(nas.SearchSpace(3), nas.op_feature_table(nas.all_ops()), 0, 3)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0 or out.stdout.strip() != "ok":
        raise AssertionError(f"import nas with gguf blocked failed: {out.stderr[-300:]}")
    return "gguf never imported; nas imports and runs with gguf unimportable"


if __name__ == "__main__":
    sys.exit(main())
