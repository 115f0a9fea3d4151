"""Print bench/RESULTS.md table rows for ``nas calibrate`` output folders.

.venv/bin/python bench/latency_table.py calib calib/seed1 ...

Per model: held-out R^2, within +-10%, MAPE, Kendall tau and the share of the measured
fastest 10% that the model also ranks fastest, and the 5-fold cross-validated within
+-10% on the training cells that chose the best model. Per run: the repeatability (the
same cells measured twice: the floor no model can beat), the split, the measuring time
and the 1-minute load average before -> after.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = (
    "| run | mode, shape(s) | model | held-out R^2 | held-out within +-10% | MAPE "
    "| Kendall tau | fastest 10% found | CV within +-10% (train) "
    "| repeatability: within +-10% (R^2) | train/held-out, time, load avg |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"  # None: NaN in the JSON (strict)


def _num(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def rows(folder: str) -> list[str]:
    doc = json.loads((Path(folder) / "calibration.json").read_text())
    rep = doc["repeatability"]
    shapes = "; ".join("x".join(map(str, s)) for s in doc["shapes"])
    rep_s = f"{doc['repeat']}: {_pct(rep['within_10pct'])} ({_num(rep['r2'], 4)})" if rep else "-"
    load = f"{doc['loadavg_before'][0]:.1f} -> {doc['loadavg_after'][0]:.1f}"
    info = f"{doc['n_train']}/{doc['n_heldout']}, {doc['measure_seconds']:.0f} s, {load}"
    out = []
    for k, (name, m) in enumerate(doc["models"].items()):
        lead = f"| `{folder}` | {doc['mode']}, {shapes} " if k == 0 else "| | "
        tail = f"| {rep_s} | {info} |" if k == 0 else "| | |"
        if "error" in m:
            out.append(f"{lead}| `{name}` | not fitted | - | - | - | - | - {tail}")
            continue
        best = " (chosen)" if name == doc["best"] else ""
        cv, tau, fast = (m.get(key) for key in ("cv_within_10pct", "kendall_tau", "fastest10"))
        out.append(
            f"{lead}| `{name}`{best} | {_num(m['heldout_r2'], 4)} | {_pct(m['within_10pct'])} "
            f"| {_pct(m['mape'])} | {_num(tau, 3)} | {_pct(fast)} | {_pct(cv)} {tail}"
        )
    return out


if __name__ == "__main__":
    print(HEADER)
    for folder in sys.argv[1:]:
        print("\n".join(rows(folder)))
