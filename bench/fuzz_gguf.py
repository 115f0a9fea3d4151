"""A long fuzz run of the GGUF loaders, beyond what the test suite has time for.

Mutates a valid export (the issue's worked example plus every extra: schema version,
alphas, num_heads) with 1-3 bit flips / random bytes / boundary 64-bit values, and
truncates one file in ten; feeds each to load_nas_arch_from_gguf, load_tensors,
load_alphas and inspect_gguf. Anything but success or GGUFFormatError is a bug:
the script prints it and exits 1.

    .venv/bin/python bench/fuzz_gguf.py --seed 1 --n 20000
"""

from __future__ import annotations

import argparse
import collections
import io
import sys
import time
import traceback

import numpy as np

from nas import DiscretizedArch, make_cell
from nas.gguf_io import (
    ExportConfig,
    GGUFFormatError,
    export_gguf,
    inspect_gguf,
    load_alphas,
    load_nas_arch_from_gguf,
    load_tensors,
)


def _example() -> bytes:
    cell = make_cell(3, [(0, 1, "conv_3x3"), (0, 2, "skip_connect"), (1, 2, "zero")])
    cfg = ExportConfig("nas-test-model", 128, 4, 16, 32, 8, num_heads=2)
    weights = {
        "blk.1.weight": np.arange(5, 11, dtype=np.float32).reshape(2, 3),
        "blk.0.weight": np.arange(1, 5, dtype=np.float32).reshape(2, 2),
    }
    buf = io.BytesIO()
    export_gguf(
        buf,
        DiscretizedArch(cell, 36864),
        cfg,
        weights,
        schema_version=1,
        alphas=np.ones((3, 2)),
        alpha_ops=["zero", "conv_3x3"],
    )
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=20000, help="mutated files")
    args = ap.parse_args()

    example = _example()
    rng = np.random.default_rng(args.seed)
    loaders = (load_nas_arch_from_gguf, load_tensors, load_alphas, inspect_gguf)
    outcomes: collections.Counter[str] = collections.Counter()
    escapes: collections.Counter[tuple[str, str, str]] = collections.Counter()
    slowest = 0.0
    t0 = time.perf_counter()
    for _ in range(args.n):
        data = bytearray(example)
        for _ in range(int(rng.integers(1, 4))):
            kind = int(rng.integers(3))
            if kind == 0:
                data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            elif kind == 1:
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
            else:
                pos = int(rng.integers(len(data) - 8))
                vals = [2**64 - 1, 2**63, 2**32, 2**31, 0, 1, 7, 33]
                data[pos : pos + 8] = vals[int(rng.integers(len(vals)))].to_bytes(8, "little")
        if rng.integers(10) == 0:
            data = data[: int(rng.integers(len(data)))]
        blob = bytes(data)
        t = time.perf_counter()
        for load in loaders:
            try:
                load(blob)
                outcomes["ok"] += 1
            except GGUFFormatError:
                outcomes["GGUFFormatError"] += 1
            except Exception as exc:  # the bug this script hunts
                escapes[(load.__name__, type(exc).__name__, str(exc)[:100])] += 1
                if sum(escapes.values()) <= 3:
                    traceback.print_exc()
        slowest = max(slowest, time.perf_counter() - t)
    total = time.perf_counter() - t0
    print(
        f"seed {args.seed}: {args.n} mutated files x {len(loaders)} loaders: "
        f"{outcomes['ok']} loaded, {outcomes['GGUFFormatError']} GGUFFormatError, "
        f"{sum(escapes.values())} other exceptions; {total:.1f} s, "
        f"slowest file {slowest * 1e3:.1f} ms"
    )
    for key, count in escapes.most_common(20):
        print(f"  {count:6d}  {key}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
