"""Refit latency models on a ``nas calibrate`` folder's saved measurement, offline.

.venv/bin/python bench/latency_refit.py calib/fwd [--features seed,lut,layout,...]

Reads points.csv (the measured latencies and the train/held-out split) and
calibration.json (space, hardware profile, weighting), then runs the same
cross-validated choice as ``nas calibrate`` (nas.latency_fit.fit_models) and prints
each feature set's CV and held-out figures: model variants are compared on one
measurement without measuring again.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from nas.costs import HWProfile
from nas.latency import CalibrationPoint
from nas.latency_fit import FitSpec, fit_models
from nas.space import SearchSpace, parse_ops


def load(folder: Path) -> tuple[dict, list[CalibrationPoint], list[str]]:
    doc = json.loads((folder / "calibration.json").read_text())
    space = SearchSpace(doc["space"]["num_nodes"], parse_ops(",".join(doc["space"]["ops"])))
    points, split = [], []
    with open(folder / "points.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            cell = space.cell_from_codes([int(v) for v in row["op_codes"].split()])
            shape = tuple(int(v) for v in row["shape"].split("x"))
            points.append(CalibrationPoint(cell, float(row["latency_s"]), shape))
            split.append(row["split"])
    return doc, points, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--features", default=None, help="comma list (default: the run's own)")
    args = ap.parse_args()
    doc, points, split = load(args.folder)
    feats = args.features.split(",") if args.features else list(doc["models"])
    hw = doc["estimator"]["hw"]
    shapes = doc["shapes"]
    spec = FitSpec(
        HWProfile(hw["name"], hw["flops_throughput_gflops"], hw["mem_bandwidth_gbs"]),
        SearchSpace(2, parse_ops(",".join(doc["space"]["ops"]))).ops,
        tuple(shapes[0]) if len(shapes) == 1 else None,
        weighting=doc["weighting"],
    )
    train = [p for p, s in zip(points, split, strict=True) if s in ("train", "anchor")]
    test = [p for p, s in zip(points, split, strict=True) if s == "heldout"]
    best, models, _ = fit_models(spec, feats, train, test)
    for name, m in models.items():
        if "error" in m:
            print(f"{name:14s} not fitted: {m['error']}")
            continue
        print(
            f"{name:14s} CV {100 * m['cv_within_10pct']:5.1f}% | held-out R^2 "
            f"{m['heldout_r2']:.4f}, {100 * m['within_10pct']:5.1f}% within +-10%, MAPE "
            f"{100 * m['mape']:4.1f}%, tau {m['kendall_tau']:.3f}, fastest 10% "
            f"{100 * m['fastest10']:.0f}%{'  <- chosen' if name == best else ''}"
        )


if __name__ == "__main__":
    main()
