"""Print bench/RESULTS.md table rows for ``nas calibrate`` output folders.

.venv/bin/python bench/latency_table.py calib calib/seed1 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = (
    "| run | mode, shape(s) | model | held-out R^2 | held-out within +-10% | MAPE "
    "| repeatability: within +-10% (R^2) | train/held-out, time, load avg |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rows(folder: str) -> list[str]:
    doc = json.loads((Path(folder) / "calibration.json").read_text())
    rep = doc["repeatability"]
    shapes = "; ".join("x".join(map(str, s)) for s in doc["shapes"])
    rep_s = f"{doc['repeat']}: {_pct(rep['within_10pct'])} ({rep['r2']:.4f})" if rep else "-"
    load = f"{doc['loadavg_before'][0]:.1f} -> {doc['loadavg_after'][0]:.1f}"
    info = f"{doc['n_train']}/{doc['n_heldout']}, {doc['measure_seconds']:.0f} s, {load}"
    out = []
    for k, (name, m) in enumerate(doc["models"].items()):
        lead = f"| `{folder}` | {doc['mode']}, {shapes} " if k == 0 else "| | "
        tail = f"| {rep_s} | {info} |" if k == 0 else "| | |"
        if "error" in m:
            out.append(f"{lead}| `{name}` | not fitted (rank-deficient) | - | - {tail}")
            continue
        best = " (best)" if name == doc["best"] else ""
        out.append(
            f"{lead}| `{name}`{best} | {m['heldout_r2']:.4f} | {_pct(m['within_10pct'])} "
            f"| {_pct(m['mape'])} {tail}"
        )
    return out


if __name__ == "__main__":
    print(HEADER)
    for folder in sys.argv[1:]:
        print("\n".join(rows(folder)))
