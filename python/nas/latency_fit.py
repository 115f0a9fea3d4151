"""Fitting latency models and choosing one: k-fold cross-validation on training cells.

:func:`fit_models` is the model part of ``nas calibrate``: every candidate feature set
is scored by k-fold cross-validation on the TRAINING points only (out-of-fold within
+-10%, then R^2), the one that scores best is the chosen model (``best``), and every set
is then refitted on all training points and scored once on the held-out points. The
held-out points never reach the choice: they are only predicted after it is made
(tests/test_latency.py changes them and checks the choice stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .costs import HWProfile
from .latency import CalibrationPoint, LatencyEstimator, Shape, accuracy_metrics
from .space import OpType

# Ridge on the column-scaled design (LatencyEstimator.calibrate): keeps the finer
# feature sets (near-collinear columns, columns a sample never exercises) solvable.
RIDGE = 1e-6
FOLDS = 5


@dataclass(frozen=True)
class FitSpec:
    """How the candidates are built and fitted: hardware profile (units of the seed
    model), the space's ops, the shape of a single-shape run (None: several), the
    least-squares weighting, the ridge, the number of folds and the fold seed."""

    hw: HWProfile
    ops: Sequence[OpType]
    shape: Shape | None
    weighting: str = "relative"
    ridge: float = RIDGE
    folds: int = FOLDS
    seed: int = 0

    def fit(self, features: str, points: Sequence[CalibrationPoint]) -> LatencyEstimator:
        est = LatencyEstimator(self.hw, features=features, ops=self.ops, shape=self.shape)
        return est.calibrate(points, weighting=self.weighting, ridge=self.ridge)


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """[n] fold number (0..folds-1) of each point: a seeded shuffle dealt round-robin."""
    if folds < 2 or folds > n:
        raise ValueError(f"folds must lie in [2, {n}] (the training points), got {folds}")
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def cross_validate(
    spec: FitSpec, features: str, points: Sequence[CalibrationPoint]
) -> dict[str, float]:
    """Out-of-fold :func:`nas.latency.accuracy_metrics` of ``features`` on ``points``:
    each fold is predicted by the model fitted on the other folds. Raises ValueError
    when a fold cannot be fitted (too few points for the set's coefficients)."""
    points = list(points)
    ids = fold_ids(len(points), spec.folds, spec.seed)
    pred = np.empty(len(points))
    for f in range(spec.folds):
        fit_on = [p for p, i in zip(points, ids, strict=True) if i != f]
        rows = np.flatnonzero(ids == f)
        pred[rows] = spec.fit(features, fit_on).predict_points([points[k] for k in rows])
    return accuracy_metrics([p.latency for p in points], pred)


def _score(cv: dict[str, float]) -> tuple[float, float]:
    r2 = cv["r2"]
    return (cv["within_10pct"], r2 if np.isfinite(r2) else -np.inf)


def fit_models(
    spec: FitSpec,
    features: Sequence[str],
    train: Sequence[CalibrationPoint],
    heldout: Sequence[CalibrationPoint],
) -> tuple[str, dict[str, dict[str, Any]], dict[str, LatencyEstimator]]:
    """Cross-validate each feature set on ``train``, choose the best, refit every set on
    all of ``train`` and score it on ``heldout``.

    Returns (best, models, estimators): ``models[name]`` holds ``cv_*`` (out-of-fold on
    the training points), ``heldout_*`` / ``within_10pct`` / ``mape`` / ``kendall_tau`` /
    ``fastest10`` (held-out), ``train_*`` and the estimator document, or ``error`` when
    the set could not be fitted. Raises ValueError when no set can be fitted."""
    train, heldout = list(train), list(heldout)
    models: dict[str, dict[str, Any]] = {}
    ests: dict[str, LatencyEstimator] = {}
    cv: dict[str, dict[str, float]] = {}
    cv_errors: dict[str, str] = {}
    for name in features:
        try:
            ests[name] = spec.fit(name, train)
        except ValueError as exc:
            models[name] = {"error": str(exc)}
            continue
        try:
            cv[name] = cross_validate(spec, name, train)
        except ValueError as exc:  # a fold too small for the set's coefficients
            cv_errors[name] = str(exc)
    if not ests:
        errors = "; ".join(f"{k}: {v['error']}" for k, v in models.items())
        raise ValueError(f"no feature set could be fitted: {errors}")
    # the choice sees the training points only; held-out ones are predicted after it
    if cv:
        best = max(cv, key=lambda k: _score(cv[k]))
    elif len(ests) == 1:  # nothing to choose between: the one set needs no CV
        best = next(iter(ests))
    else:
        raise ValueError(
            f"{len(train)} training points are too few to cross-validate any feature set "
            f"({spec.folds} folds; {'; '.join(f'{k}: {v}' for k, v in cv_errors.items())}): "
            "measure more cells or name one set with features="
        )
    y_test = [p.latency for p in heldout]
    for name, est in ests.items():
        m = accuracy_metrics(y_test, est.predict_points(heldout))
        tm = est.metrics(train)
        nan = {"within_10pct": float("nan"), "r2": float("nan"), "mape": float("nan")}
        c = cv.get(name, nan)  # NaN: this set could not be cross-validated
        models[name] = {
            "cv_within_10pct": c["within_10pct"],
            "cv_r2": c["r2"],
            "cv_mape": c["mape"],
            "heldout_r2": m["r2"],
            "within_10pct": m["within_10pct"],
            "mape": m["mape"],
            "kendall_tau": m["kendall_tau"],
            "fastest10": m["fastest10"],
            "train_r2": tm["r2"],
            "train_within_10pct": tm["within_10pct"],
            "estimator": est.to_dict(),
        }
        if name in cv_errors:
            models[name]["cv_error"] = cv_errors[name]
    models = {name: models[name] for name in features}  # the caller's order
    return best, models, ests


__all__ = ["FOLDS", "RIDGE", "FitSpec", "cross_validate", "fit_models", "fold_ids"]
