"""Fused nas.ops.mixed_op vs the eager quark0/darts reference, forward + backward.

Side by side in one process, float32, torch.set_num_threads(2), median of repeats:

(a) signal space (avg_pool_3x3, max_pool_3x3, skip_connect, zero): the whole mixed op;
(b) all 8 ops: the 4 conv candidates are ATen modules (nas.signal_ops.build_op) in
    both paths; "mixing" times only the mix of precomputed conv outputs (forward and
    backward), "end to end" times convs + mix.

Memory: bytes autograd keeps for backward (saved tensors, unique storages, excluding
the inputs themselves), and the [B, N, D] outputs the reference materialises.

Usage: flock /tmp/nas-bench.lock .venv/bin/python bench/bench_mixed_op.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import nas
from nas.ops import _reference, mixed_op
from nas.signal_ops import build_op

SHAPES = [(224, 42, 16), (256, 42, 64), (896, 64, 128)]
SIGNAL = ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]
ALL = [op.value for op in nas.all_ops()]
CONVS = ["conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5"]


def _median_ms(fn: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _saved_bytes(fn: Callable[[], torch.Tensor], exclude: list[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward (unique storages, minus inputs)."""
    seen: dict[int, int] = {}
    skip = {t.untyped_storage().data_ptr() for t in exclude}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn()
    del y
    return sum(seen.values())


def _step(mix, x, alpha, ops, params, g) -> Callable[[], None]:
    def run() -> None:
        for t in (x, alpha, *params):
            t.grad = None
        mix(x, alpha, ops, params).backward(g)

    return run


def bench_signal(shape, repeats: int) -> dict:
    x = torch.randn(shape, requires_grad=True)
    alpha = torch.randn(len(SIGNAL), requires_grad=True)
    g = torch.randn(shape)
    ref = _median_ms(_step(_reference.mixed_op, x, alpha, SIGNAL, [], g), repeats)
    fused = _median_ms(_step(mixed_op, x, alpha, SIGNAL, [], g), repeats)
    mem_ref = _saved_bytes(lambda: _reference.mixed_op(x, alpha, SIGNAL, []), [x, alpha])
    mem_fused = _saved_bytes(lambda: mixed_op(x, alpha, SIGNAL, []), [x, alpha])
    return dict(ref=ref, fused=fused, mem_ref=mem_ref, mem_fused=mem_fused)


def bench_all(shape, repeats: int) -> dict:
    D = shape[2]
    torch.manual_seed(0)
    convs = [build_op(op, D) for op in CONVS]
    x = torch.randn(shape, requires_grad=True)
    alpha = torch.randn(len(ALL), requires_grad=True)
    g = torch.randn(shape)
    # Mixing only: conv outputs as leaves, in the layout the modules return them.
    with torch.no_grad():
        outs = [m(x).requires_grad_(True) for m in convs]
    mix_ref = _median_ms(_step(_reference.mixed_op, x, alpha, ALL, outs, g), repeats)
    mix_fused = _median_ms(_step(mixed_op, x, alpha, ALL, outs, g), repeats)

    def e2e(mix) -> Callable[[], None]:
        def run() -> None:
            for t in (x, alpha, *(p for m in convs for p in m.parameters())):
                t.grad = None
            mix(x, alpha, ALL, [m(x) for m in convs]).backward(g)

        return run

    end_ref = _median_ms(e2e(_reference.mixed_op), repeats)
    end_fused = _median_ms(e2e(mixed_op), repeats)
    mem_ref = _saved_bytes(lambda: _reference.mixed_op(x, alpha, ALL, outs), [x, alpha, *outs])
    mem_fused = _saved_bytes(lambda: mixed_op(x, alpha, ALL, outs), [x, alpha, *outs])
    return dict(
        mix_ref=mix_ref,
        mix_fused=mix_fused,
        end_ref=end_ref,
        end_fused=end_fused,
        mem_ref=mem_ref,
        mem_fused=mem_fused,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    assert nas.has_native(), "nas._C is not built: the fused op would be the reference"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
        f"median of {args.repeats}, forward + backward"
    )
    mib = 1 / 2**20
    print("\n(a) signal space: avg_pool_3x3, max_pool_3x3, skip_connect, zero")
    print("| [B, N, D] | reference ms | fused ms | speedup | saved for bwd: ref MiB | fused MiB |")
    print("|---|---|---|---|---|---|")
    for shape in SHAPES:
        r = bench_signal(shape, args.repeats)
        print(
            f"| {list(shape)} | {r['ref']:.2f} | {r['fused']:.2f} | {r['ref'] / r['fused']:.2f}x"
            f" | {r['mem_ref'] * mib:.1f} | {r['mem_fused'] * mib:.1f} |"
        )
    print("\n(b) all 8 ops: conv outputs from ATen modules, mixing fused")
    print(
        "| [B, N, D] | mixing: ref ms | fused ms | speedup | end to end: ref ms | fused ms "
        "| speedup | saved for bwd (mix): ref MiB | fused MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        r = bench_all(shape, args.repeats)
        print(
            f"| {list(shape)} | {r['mix_ref']:.2f} | {r['mix_fused']:.2f} "
            f"| {r['mix_ref'] / r['mix_fused']:.2f}x | {r['end_ref']:.2f} | {r['end_fused']:.2f} "
            f"| {r['end_ref'] / r['end_fused']:.2f}x | {r['mem_ref'] * mib:.1f} "
            f"| {r['mem_fused'] * mib:.1f} |"
        )


if __name__ == "__main__":
    main()
