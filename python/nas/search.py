"""The signal pipeline (the seed's ``RunSignalNAS``, for real): several DARTS trials of
the PatchTST-like supernet on real series, the best architecture discretized,
retrained from scratch with early stopping, evaluated on every test window, exported.

    cfg = nas.SignalSearchConfig(lookback=336, horizon_len=96)
    data = nas.WindowedSeries("ETTh1.csv", 336, 96, split="ett")
    out = nas.run_signal_nas(cfg, data)
    out.save("run/")                    # run/model.gguf + run/result.json
    model = nas.load_model("run/model.gguf")

Each trial has its own seed (derived from ``cfg.seed`` and the trial index), its own
initialisation (alpha ~ 1e-3 * N(0, 1), as DARTS) and ``search_steps`` bilevel steps
(weights on ``train_batch()``, alpha on ``val_batch()``). Its ``final_loss`` is the
supernet's validation MSE over every validation window (or ``val_batches`` draws of a
provider without ``batches``). A trial whose losses or alpha turn non-finite is
recorded as failed, with the reason, and the others go on; if all fail, the run is an
error. The best trial has the lowest final_loss (ties: the earliest).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._io import atomic_path, write_json_atomic
from .costs import hw_profile, op_params_1d
from .darts import DARTSOptimizer, _grads
from .data import SignalDataProvider
from .discretize import RULES, discretize
from .gguf_io import ExportConfig, export_gguf, load_nas_arch_from_gguf, load_tensors
from .latency import LatencyEstimator, expected_latency, load_estimator
from .log import get_logger
from .signal import (
    SignalModel,
    build_discrete_model,
    build_supernet_model,
    fixed_parameters,
    model_tensors,
    num_patches,
)
from .space import (
    Cell,
    DiscretizedArch,
    Edge,
    SearchSpace,
    default_signal_search_space,
    format_cell,
)

_log = get_logger(__name__)

METRICS: tuple[str, ...] = ("inverse_loss", "sharpe")
PARALLEL: tuple[str, ...] = ("data", "trials")
SCHEMA_VERSION = 1
RESULT_VERSION = 1

ProgressFn = Callable[[dict[str, Any]], None]


def sharpe_ratio(returns: Sequence[float] | np.ndarray | torch.Tensor) -> float:
    """mean / sample std (n - 1) of ``returns``; 0.0 for fewer than 2 values or a std
    below 1e-12 (the seed's SharpeRatio). [0.1, 0.2, 0.3] -> 2.0000000000000004."""
    if isinstance(returns, torch.Tensor):
        returns = returns.detach().cpu().double().numpy()
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size < 2:
        return 0.0
    mean = float(r.sum() / r.size)
    std = math.sqrt(float(((r - mean) ** 2).sum()) / (r.size - 1))
    if not std >= 1e-12:
        return 0.0
    return mean / std


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass
class SignalSearchConfig:
    """What :func:`run_signal_nas` does. The defaults are the recommended settings
    (ETTh1 figures in bench/RESULTS.md were made with them).

    The seed's fields: num_trials, search_steps, weight_lr, alpha_lr, max_params (the
    whole model's parameter budget; 0: none), input_features (0: from the data),
    patch_len, horizon_len, hidden_dim, num_layers, search_space (default
    ``default_signal_search_space()``; any space works), seed (None: random, recorded
    in the result; every int, 0 included, is deterministic).
    Ours: lookback, stride, batch_size, device, warmup_steps (the first steps of a
    trial, at most half of them, train the weights only; alpha moves after them, as in
    PC-DARTS), threads (torch's CPU threads for the run; None: leave as is), order (1
    or 2: DARTS' first or second order), alpha_optimizer / weight_optimizer ("adam" or
    "sgd"), discretize_rule ("argmax" or "darts"), latency_weight (>= 0: the alpha loss
    adds latency_weight * expected_latency(alpha) / expected_latency(uniform alpha)),
    latency_estimator (a hardware profile name such as "dgx_spark", a calibration file
    from ``nas calibrate``, or a LatencyEstimator; default "dgx_spark"),
    retrain_epochs, retrain_lr, patience (epochs without a better validation MSE
    before stopping), dropout (on the embedding and the head's input), metric
    ("inverse_loss": 1 / (1 + final_loss), the seed's; "sharpe": the Sharpe ratio of
    trading the sign of the first forecast step on the validation windows),
    model_name, eval_batch_size, val_batches (validation draws for providers without
    ``batches``), retrain_steps (steps per retraining epoch for such providers),
    parallel (under torch.distributed, e.g. torchrun: "data" splits every batch over
    the processes and averages gradients, alpha's included; "trials" gives each
    process its own trials; one process: no effect).
    """

    num_trials: int = 3
    search_steps: int = 1500
    warmup_steps: int = 500
    weight_lr: float = 1e-3
    alpha_lr: float = 1e-2
    max_params: int = 100_000
    input_features: int = 0
    patch_len: int = 16
    horizon_len: int = 96
    hidden_dim: int = 16
    num_layers: int = 2
    search_space: SearchSpace | None = None
    seed: int | None = 0
    lookback: int = 336
    stride: int = 8
    batch_size: int = 32
    device: str = "cpu"
    order: int = 1
    alpha_optimizer: str = "adam"
    weight_optimizer: str = "adam"
    discretize_rule: str = "argmax"
    latency_weight: float = 0.0
    latency_estimator: str | LatencyEstimator | None = None
    retrain_epochs: int = 10
    retrain_lr: float = 1e-3
    patience: int = 3
    dropout: float = 0.2
    metric: str = "inverse_loss"
    model_name: str = "nas-signal"
    eval_batch_size: int = 256
    val_batches: int = 20
    retrain_steps: int = 200
    threads: int | None = None
    parallel: str = "data"

    def validate(self) -> None:
        """ValueError naming the first invalid field."""

        def positive_int(name: str, minimum: int = 1, what: str = "at least") -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {v!r}")
            if v < minimum:
                raise ValueError(f"{name} must be {what} {minimum}, got {v}")

        def positive_float(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{name} must be a number, got {v!r}")
            if not v > 0 or math.isinf(v):  # NaN is not positive
                raise ValueError(f"{name} must be positive, got {v!r}")

        positive_int("num_trials")
        positive_int("search_steps")
        positive_float("weight_lr")
        positive_float("alpha_lr")
        positive_float("retrain_lr")
        positive_int("max_params", 0, ">=")
        positive_int("input_features", 0, ">=")
        for name in ("patch_len", "horizon_len", "hidden_dim", "num_layers", "lookback"):
            positive_int(name)
        for name in ("stride", "batch_size", "eval_batch_size", "val_batches", "retrain_steps"):
            positive_int(name)
        positive_int("retrain_epochs", 0, ">=")
        positive_int("warmup_steps", 0, ">=")
        if self.threads is not None:
            positive_int("threads")
        positive_int("patience", 1)
        if self.patch_len > self.lookback:
            raise ValueError(
                f"patch_len {self.patch_len} is longer than the lookback {self.lookback}"
            )
        if self.seed is not None:
            positive_int("seed", 0, ">=")
        if self.order not in (1, 2) or isinstance(self.order, bool):
            raise ValueError(f"order must be 1 or 2, got {self.order!r}")
        for name in ("alpha_optimizer", "weight_optimizer"):
            if getattr(self, name) not in ("adam", "sgd"):
                raise ValueError(f"{name} must be 'adam' or 'sgd', got {getattr(self, name)!r}")
        if self.discretize_rule not in RULES:
            raise ValueError(
                f"discretize_rule must be one of {', '.join(RULES)}, got {self.discretize_rule!r}"
            )
        lw = self.latency_weight
        if (
            isinstance(lw, bool)
            or not isinstance(lw, (int, float))
            or not (lw >= 0)
            or math.isinf(lw)
        ):
            raise ValueError(f"latency_weight must be a finite number >= 0, got {lw!r}")
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d < 1:
            raise ValueError(f"dropout must be in [0, 1), got {d!r}")
        if self.parallel not in PARALLEL:
            raise ValueError(
                f"parallel must be one of {', '.join(PARALLEL)}, got {self.parallel!r}"
            )
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.search_space is not None and not isinstance(self.search_space, SearchSpace):
            raise ValueError(f"search_space must be a SearchSpace, got {self.search_space!r}")
        space = self.space()
        if space.num_nodes < 2 or space.num_ops < 2:
            raise ValueError(
                f"search_space needs >= 2 nodes and >= 2 ops, got {space.num_nodes} nodes, "
                f"{space.num_ops} ops"
            )
        if not isinstance(self.model_name, str):
            raise ValueError(f"model_name must be a str, got {self.model_name!r}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device {self.device!r} is not a torch device") from None

    def space(self) -> SearchSpace:
        return self.search_space if self.search_space is not None else default_signal_search_space()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the space as nodes + op names, the estimator by its name."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        space = self.space()
        doc["search_space"] = {"num_nodes": space.num_nodes, "ops": [o.value for o in space.ops]}
        if isinstance(self.latency_estimator, LatencyEstimator):
            doc["latency_estimator"] = repr(self.latency_estimator)
        return doc


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class SignalSearchResult:
    """One trial: its discretized cell (``arch``), ``metric``, ``final_loss`` (the
    supernet's validation MSE), or ``failed`` with ``reason``."""

    trial: int
    arch: DiscretizedArch | None
    metric: float
    final_loss: float
    seed: int = 0
    failed: bool = False
    reason: str = ""
    alpha: np.ndarray | None = None
    seconds: float = 0.0
    steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "seed": self.seed,
            "failed": self.failed,
            "reason": self.reason,
            "final_loss": _finite_or_none(self.final_loss),
            "metric": _finite_or_none(self.metric),
            "cell": None if self.arch is None else cell_to_dict(self.arch.cell),
            "cell_params": None if self.arch is None else self.arch.total_params,
            "alpha": None if self.alpha is None else self.alpha.tolist(),
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "history": self.history,
        }


@dataclass
class SignalSearchOutput:
    """What :func:`run_signal_nas` returns.

    best / all_results: the trials (the seed's); export_config: the GGUF config;
    model: the retrained discrete :class:`~nas.signal.SignalModel` (eval mode);
    arch: its cell (every edge of the space; edges that do not run, zero or dead, carry
    zero) with the MODEL's parameter count;
    test_metrics: {"mse", "mae", "windows"} over every test window (normalised scale;
    None for providers without a test split); val_metrics likewise on validation;
    timings: seconds per phase; retrain_history: per-epoch losses.
    """

    best: SignalSearchResult
    all_results: list[SignalSearchResult]
    export_config: ExportConfig
    model: SignalModel
    arch: DiscretizedArch
    test_metrics: dict[str, float] | None
    val_metrics: dict[str, float]
    config: SignalSearchConfig
    timings: dict[str, float]
    retrain_history: list[dict[str, Any]]
    data_info: dict[str, Any] | None = None

    def export(self, path: str | os.PathLike[str]) -> None:
        """Write the trained model as GGUF (see README, "GGUF tensors of a trained model")."""
        export_signal_model(path, self.model, self.arch, self.export_config, self.best.alpha,
                            self.config.space())  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """result.json: the retrained model's document (TrainedCell.to_dict) with the
        trials and the best trial's index."""
        trained = TrainedCell(self.model, self.arch, self.export_config, self.val_metrics,
                              self.test_metrics, self.retrain_history, self.timings,
                              self.config, self.data_info)  # fmt: skip
        return {
            **trained.to_dict(),
            "best_trial": self.best.trial,
            "trials": [r.to_dict() for r in self.all_results],
        }

    def save(self, folder: str | os.PathLike[str]) -> dict[str, str]:
        """Write ``folder/model.gguf`` and ``folder/result.json`` (each atomically);
        returns their paths."""
        return _save_run(folder, self.export, self.to_dict())


def _finite_or_none(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _save_run(
    folder: str | os.PathLike[str], export: Callable[[str], None], doc: dict[str, Any]
) -> dict[str, str]:
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = {
        "model": os.path.join(folder, "model.gguf"),
        "result": os.path.join(folder, "result.json"),
    }
    export(paths["model"])
    write_json_atomic(paths["result"], doc)
    return paths


def cell_to_dict(cell: Cell) -> dict[str, Any]:
    return {
        "num_nodes": cell.num_nodes,
        "edges": [[e.src, e.dst, str(e.op)] for e in cell.edges],
        "text": format_cell(cell),
    }


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def _eval_batches(
    data: SignalDataProvider, split: str, batch_size: int, draws: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(data, "batches"):
        yield from data.batches(split, batch_size)  # type: ignore[attr-defined]
        return
    if split == "test":
        return
    draw = data.val_batch if split == "val" else data.train_batch
    for _ in range(draws):
        yield draw()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: SignalDataProvider,
    split: str = "test",
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    draws: int = 20,
) -> dict[str, float] | None:
    """MSE and MAE of ``model`` over EVERY window of ``split`` (the last, short batch
    included), on the data's (normalised) scale: {"mse", "mae", "windows"}. For a
    provider without ``batches``: ``draws`` batches of val_batch()/train_batch(), and
    None for "test"."""
    was_training = model.training
    model.eval()
    se = ae = 0.0
    n = windows = 0
    try:
        for x, y in _eval_batches(data, split, batch_size, draws):
            x, y = x.to(device), y.to(device)
            err = (model(x) - y).double()
            se += float(err.square().sum())
            ae += float(err.abs().sum())
            n += err.numel()
            windows += x.shape[0]
    finally:
        model.train(was_training)
    if n == 0:
        return None
    return {"mse": se / n, "mae": ae / n, "windows": windows}


@torch.no_grad()
def _sharpe_metric(
    model: torch.nn.Module, data: SignalDataProvider, cfg: SignalSearchConfig
) -> float:
    """Sharpe ratio of trading the sign of the first forecast step against the last
    observed value, on the validation windows (every series a position)."""
    model.eval()
    rets = []
    for x, y in _eval_batches(data, "val", cfg.eval_batch_size, cfg.val_batches):
        x, y = x.to(cfg.device), y.to(cfg.device)
        last = x[:, -1, :]
        pos = torch.sign(model(x)[:, 0, :] - last)
        rets.append((pos * (y[:, 0, :] - last)).reshape(-1).double().cpu())
    model.train()
    return sharpe_ratio(torch.cat(rets)) if rets else 0.0


# --------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------


def _dist() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _allreduce_mean(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The mean of each tensor over the processes (one all_reduce for all of them)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    out, i = [], 0
    for t in tensors:
        out.append(flat[i : i + t.numel()].reshape(t.shape).to(t.dtype))
        i += t.numel()
    return out


def _trial_seed(seed: int, trial: int) -> int:
    return int(np.random.SeedSequence([seed, trial]).generate_state(1, np.uint32)[0])


def _estimator(cfg: SignalSearchConfig, shape: tuple[int, int, int]) -> LatencyEstimator:
    est = cfg.latency_estimator
    if isinstance(est, LatencyEstimator):
        return est
    if est is None:
        est = "dgx_spark"
    if os.path.isfile(est):
        return load_estimator(est)
    try:
        hw = hw_profile(est)
    except ValueError as exc:
        raise ValueError(
            f"latency_estimator {est!r} is neither a calibration file nor a hardware "
            f"profile ({exc})"
        ) from None
    return LatencyEstimator(hw, shape=shape)


class _TrialDiverged(Exception):
    pass


def _check_finite(what: str, value: float, step: int) -> None:
    if not math.isfinite(value):
        raise _TrialDiverged(f"{what} is {value} at step {step}")


def _model_kwargs(cfg: SignalSearchConfig, features: int) -> dict[str, int]:
    return {
        "lookback": cfg.lookback,
        "horizon": cfg.horizon_len,
        "num_features": features,
        "patch_len": cfg.patch_len,
        "stride": cfg.stride,
        "hidden": cfg.hidden_dim,
    }


def _check_data(data: SignalDataProvider, cfg: SignalSearchConfig) -> int:
    if not callable(getattr(data, "train_batch", None)) or not callable(
        getattr(data, "val_batch", None)
    ):
        raise ValueError("data must provide train_batch() and val_batch() (SignalDataProvider)")
    x, y = data.train_batch()
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError("train_batch() must return (input, target) tensors")
    if x.dim() != 3 or y.dim() != 3:
        raise ValueError(
            f"train_batch() must return input [B, L, F] and target [B, H, F], got "
            f"{list(x.shape)} and {list(y.shape)}"
        )
    if x.shape[1] != cfg.lookback:
        raise ValueError(f"the data's lookback is {x.shape[1]}, the config's {cfg.lookback}")
    if y.shape[1] != cfg.horizon_len:
        raise ValueError(
            f"the data's horizon is {y.shape[1]}, the config's horizon_len {cfg.horizon_len}"
        )
    if x.shape[2] != y.shape[2] or x.shape[0] != y.shape[0]:
        raise ValueError(f"input {list(x.shape)} and target {list(y.shape)} do not match")
    features = int(x.shape[2])
    if cfg.input_features and cfg.input_features != features:
        raise ValueError(f"input_features is {cfg.input_features}, the data has {features} series")
    return features


def _run_trial(
    cfg: SignalSearchConfig,
    data: SignalDataProvider,
    trial: int,
    seed: int,
    features: int,
    budget: int,
    progress: ProgressFn | None,
    ckpt: _Checkpointer | None = None,
    start: Mapping[str, Any] | None = None,
) -> SignalSearchResult:
    t0 = time.perf_counter()
    space = cfg.space()
    torch.manual_seed(seed)
    if hasattr(data, "reseed"):
        data.reseed(seed)  # type: ignore[attr-defined]
    model = build_supernet_model(
        space, **_model_kwargs(cfg, features), num_layers=cfg.num_layers, dropout=cfg.dropout
    ).to(cfg.device)
    alpha = model.backbone.alpha
    with torch.no_grad():
        alpha.normal_(0.0, 1e-3)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss
    if cfg.latency_weight > 0:
        n = num_patches(cfg.lookback, cfg.patch_len, cfg.stride)
        est = _estimator(cfg, (cfg.batch_size * features, n, cfg.hidden_dim))
        base = float(expected_latency(torch.zeros_like(alpha, dtype=torch.float64), space, est))
        scale = cfg.latency_weight / base if base > 0 else 0.0

        def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(pred, target) + scale * expected_latency(alpha, space, est)

    opt = DARTSOptimizer(
        model,
        cfg.weight_lr,
        cfg.alpha_lr,
        loss=loss_fn,
        order="first" if cfg.order == 1 else "second",
        alpha_optimizer=cfg.alpha_optimizer,
        weight_optimizer=cfg.weight_optimizer,
    )
    rank, world = _dist()
    shard = world > 1 and cfg.parallel == "data"
    if shard:  # every process draws the same global batch and takes its rows
        opt.reduce = _allreduce_mean
    history: list[dict[str, Any]] = []
    every = max(1, cfg.search_steps // 50)
    warmup = min(cfg.warmup_steps, cfg.search_steps // 2)
    result = SignalSearchResult(trial, None, float("nan"), float("nan"), seed=seed)
    first = 1
    if start is not None:  # resume inside this trial: everything as it was after a step
        model.load_state_dict(start["model"])
        assert opt.weight_optimizer is not None
        opt.weight_optimizer.load_state_dict(start["weight_opt"])
        opt.alpha_optimizer.load_state_dict(start["alpha_opt"])
        torch.set_rng_state(start["torch_rng"])
        if start["data"] is not None:
            data.load_state_dict(start["data"])  # type: ignore[attr-defined]
        history = list(start["history"])
        first = int(start["step"]) + 1
        t0 -= float(start["seconds"])

    def snapshot(done: int) -> dict[str, Any]:
        assert opt.weight_optimizer is not None
        return {
            "trial": trial,
            "step": done,
            "model": model.state_dict(),
            "weight_opt": opt.weight_optimizer.state_dict(),
            "alpha_opt": opt.alpha_optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "data": data.state_dict() if hasattr(data, "state_dict") else None,  # type: ignore[attr-defined]
            "history": history,
            "seconds": time.perf_counter() - t0,
        }

    step = first - 1
    try:
        for step in range(first, cfg.search_steps + 1):
            tx, ty = data.train_batch()
            vx, vy = data.val_batch()
            if shard:
                tx, ty, vx, vy = (v[rank::world] for v in (tx, ty, vx, vy))
            dev = cfg.device
            try:
                if step <= warmup:
                    tl, vl = _weight_step(opt, tx.to(dev), ty.to(dev)), float("nan")
                else:
                    tl, vl = opt.step(tx.to(dev), ty.to(dev), vx.to(dev), vy.to(dev))
                    _check_finite("the validation loss", vl, step)
            except FloatingPointError as exc:
                raise _TrialDiverged(str(exc)) from None
            _check_finite("the training loss", tl, step)
            if not bool(torch.isfinite(alpha).all()):
                raise _TrialDiverged(f"alpha has non-finite values at step {step}")
            if step % every == 0 or step == cfg.search_steps:
                history.append(
                    {
                        "step": step,
                        "train_loss": tl,
                        "val_loss": vl if math.isfinite(vl) else None,
                        "weights": torch.softmax(alpha.detach(), -1).cpu().tolist(),
                    }
                )
            if progress is not None:
                progress({"event": "step", "trial": trial, "step": step, "train_loss": tl,
                          "val_loss": vl})  # fmt: skip
            if ckpt is not None and step % ckpt.every == 0 and step < cfg.search_steps:
                ckpt.save_step(snapshot(step))
        val = evaluate(model, data, "val", batch_size=cfg.eval_batch_size, device=cfg.device,
                       draws=cfg.val_batches)  # fmt: skip
        assert val is not None
        _check_finite("the final validation MSE", val["mse"], cfg.search_steps)
        result.final_loss = val["mse"]
        result.metric = (
            _sharpe_metric(model, data, cfg)
            if cfg.metric == "sharpe"
            else 1.0 / (1.0 + result.final_loss)
        )
        result.alpha = alpha.detach().cpu().double().numpy()
        result.arch = discretize(
            result.alpha,
            space,
            budget,
            rule=cfg.discretize_rule,
            fit_budget=budget > 0,
            params=op_params_1d(cfg.hidden_dim),
        )
    except _TrialDiverged as exc:
        result.failed = True
        result.reason = f"diverged: {exc}"
        result.final_loss = float("nan")
        _log.warning("trial %d failed: %s", trial, result.reason)
    result.steps = step
    result.history = history
    result.seconds = time.perf_counter() - t0
    if progress is not None:
        progress({"event": "trial", "trial": trial, "result": result})
    return result


def _weight_step(opt: DARTSOptimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """A warm-up step: the weights on the training loss, alpha untouched."""
    assert opt.weight_optimizer is not None
    loss = opt.loss(opt.model(x), y)
    (shown,) = opt._reduced([loss.detach()])
    value = float(shown)
    if not math.isfinite(value):
        return value  # refused: the caller records the divergence
    for p, g in zip(opt.weights, opt._reduced(_grads(loss, opt.weights)), strict=True):
        p.grad = g
    opt.weight_optimizer.step()
    return value


CHECKPOINT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"


def _config_key(cfg: SignalSearchConfig) -> str:
    """What must match between a checkpoint and the run resuming it: the whole config,
    threads included (a CPU result is bitwise the same only for the same thread count)."""
    return json.dumps(cfg.to_dict(), sort_keys=True, default=str)


def _result_to_state(r: SignalSearchResult) -> dict[str, Any]:
    return {
        "trial": r.trial,
        "cell": None if r.arch is None else cell_to_dict(r.arch.cell)["edges"],
        "num_nodes": None if r.arch is None else r.arch.cell.num_nodes,
        "cell_params": None if r.arch is None else r.arch.total_params,
        "metric": r.metric,
        "final_loss": r.final_loss,
        "seed": r.seed,
        "failed": r.failed,
        "reason": r.reason,
        "alpha": None if r.alpha is None else torch.from_numpy(r.alpha.copy()),
        "seconds": r.seconds,
        "steps": r.steps,
        "history": r.history,
    }


def _result_from_state(d: Mapping[str, Any]) -> SignalSearchResult:
    arch = None
    if d["cell"] is not None:
        cell = Cell(d["num_nodes"], tuple(Edge(i, j, op) for i, j, op in d["cell"]))
        arch = DiscretizedArch(cell, int(d["cell_params"]))
    return SignalSearchResult(
        trial=d["trial"], arch=arch, metric=d["metric"], final_loss=d["final_loss"],
        seed=d["seed"], failed=d["failed"], reason=d["reason"],
        alpha=None if d["alpha"] is None else d["alpha"].numpy(), seconds=d["seconds"],
        steps=d["steps"], history=list(d["history"]),
    )  # fmt: skip


class _Checkpointer:
    """``folder/checkpoint.pt``: the finished trials and, inside a trial, the state
    after its last checkpointed step; replaced atomically on every save."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        every: int,
        cfg: SignalSearchConfig,
        name: str = CHECKPOINT_FILE,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {every!r}")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(os.fspath(folder), name)
        self.every = every
        self.key = _config_key(cfg)
        self.results: list[dict[str, Any]] = []
        self.search_seconds = 0.0

    def _write(self, current: Mapping[str, Any] | None) -> None:
        from . import __version__

        state = {
            "nas_checkpoint": CHECKPOINT_VERSION,
            "nas_version": __version__,
            "config": self.key,
            "results": self.results,
            "current": current,
            "search_seconds": self.search_seconds,
        }
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def save_step(self, current: Mapping[str, Any]) -> None:
        self._write(current)

    def save_results(self, results: Sequence[SignalSearchResult], seconds: float) -> None:
        self.results = [_result_to_state(r) for r in results]
        self.search_seconds = seconds
        self._write(None)

    def load(self) -> dict[str, Any] | None:
        """The saved state, None if the folder has no checkpoint; ValueError for a
        corrupt one or one of another version or config."""
        if not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types on a damaged file
            raise ValueError(f"checkpoint {self.path!r} is corrupt: {exc}") from None
        if not isinstance(state, dict) or state.get("nas_checkpoint") != CHECKPOINT_VERSION:
            found = state.get("nas_checkpoint") if isinstance(state, dict) else None
            raise ValueError(
                f"checkpoint {self.path!r} has format {found!r}; this nas reads format "
                f"{CHECKPOINT_VERSION}: start a new run folder"
            )
        if state.get("config") != self.key:
            raise ValueError(
                f"checkpoint {self.path!r} was made with another config (or nas version "
                f"{state.get('nas_version')!r}); resume with the same settings or start a "
                "new run folder"
            )
        self.results = list(state["results"])
        self.search_seconds = float(state["search_seconds"])
        return state


def _cell_budget(cfg: SignalSearchConfig, features: int) -> int:
    """Params one cell may have so the whole model stays within cfg.max_params (0: no
    budget): (max_params - fixed - layer norms) / num_layers."""
    if cfg.max_params == 0:
        return 0
    fixed = fixed_parameters(**_model_kwargs(cfg, features))
    norms = 2 * cfg.hidden_dim * cfg.num_layers
    per_cell = (cfg.max_params - fixed - norms) // cfg.num_layers
    if cfg.max_params < fixed:
        raise ValueError(
            f"max_params {cfg.max_params} is below the {fixed} parameters the model has "
            "outside its cells (embedding, positions, head); raise it, or lower hidden_dim, "
            "lookback or horizon_len"
        )
    # A budget of 0 means "none" to discretize: a cell that fits in nothing but the
    # identity gets the smallest positive budget (only parameter-free ops fit).
    return max(per_cell, 1)


def _retrain(
    cfg: SignalSearchConfig,
    data: SignalDataProvider,
    cell: Cell,
    features: int,
    seed: int,
    progress: ProgressFn | None,
) -> tuple[SignalModel, list[dict[str, Any]]]:
    """Train the discrete model from scratch (Adam, lr decayed x0.7 per epoch), keep
    the weights of the epoch with the best validation MSE, stop after ``patience``
    epochs without improvement."""
    torch.manual_seed(seed)
    model = build_discrete_model(
        cell, **_model_kwargs(cfg, features), num_layers=cfg.num_layers, dropout=cfg.dropout
    ).to(cfg.device)
    history: list[dict[str, Any]] = []
    if cfg.retrain_epochs == 0 or not list(model.parameters()):
        model.eval()
        return model, history
    if progress is not None:
        progress({"event": "retrain", "epochs": cfg.retrain_epochs})
    opt = torch.optim.Adam(model.parameters(), lr=cfg.retrain_lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.7)
    rng = np.random.default_rng(seed)
    best_state, best_val, bad = None, math.inf, 0
    for epoch in range(1, cfg.retrain_epochs + 1):
        model.train()
        if hasattr(data, "batches"):
            batches: Iterator = data.batches("train", cfg.batch_size, shuffle=True, rng=rng)  # type: ignore[attr-defined]
        else:
            batches = (data.train_batch() for _ in range(cfg.retrain_steps))
        total, count = 0.0, 0
        for x, y in batches:
            x, y = x.to(cfg.device), y.to(cfg.device)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
            count += x.shape[0]
        sched.step()
        train_loss = total / max(count, 1)
        val = evaluate(model, data, "val", batch_size=cfg.eval_batch_size, device=cfg.device,
                       draws=cfg.val_batches)  # fmt: skip
        assert val is not None
        history.append({"epoch": epoch, "train_loss": train_loss, "val_mse": val["mse"]})
        if progress is not None:
            progress({"event": "epoch", "epoch": epoch, "train_loss": train_loss,
                      "val_mse": val["mse"]})  # fmt: skip
        if not math.isfinite(train_loss) or not math.isfinite(val["mse"]):
            raise FloatingPointError(
                f"retraining diverged at epoch {epoch} (train loss {train_loss}, "
                f"val MSE {val['mse']}); lower retrain_lr"
            )
        if val["mse"] < best_val:
            best_val, bad = val["mse"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return model, history


@dataclass
class TrainedCell:
    """A discrete model trained by :func:`train_cell` (the pipeline's retraining):
    model (eval mode), arch (the pruned cell with the model's parameter count),
    export_config, val_metrics / test_metrics (every window; test None for providers
    without a test split), history (per epoch), timings."""

    model: SignalModel
    arch: DiscretizedArch
    export_config: ExportConfig
    val_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    history: list[dict[str, Any]]
    timings: dict[str, float]
    config: SignalSearchConfig | None = None
    data_info: dict[str, Any] | None = None

    def export(self, path: str | os.PathLike[str]) -> None:
        export_signal_model(path, self.model, self.arch, self.export_config)

    def to_dict(self) -> dict[str, Any]:
        """result.json of `nas train` (the keys of a search's, without trials)."""
        t = self.test_metrics
        return {
            "nas_result_version": RESULT_VERSION,
            "config": None if self.config is None else self.config.to_dict(),
            "data": self.data_info,
            "cell": cell_to_dict(self.arch.cell),
            "cell_text": format_cell(self.arch.cell),
            "params": self.arch.total_params,
            "test_mse": None if t is None else t["mse"],
            "test_mae": None if t is None else t["mae"],
            "test_windows": None if t is None else t["windows"],
            "val_mse": self.val_metrics["mse"],
            "val_mae": self.val_metrics["mae"],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "trials": [],
            "retrain_history": self.history,
            "export_config": asdict(self.export_config),
        }

    def save(self, folder: str | os.PathLike[str]) -> dict[str, str]:
        """``folder/model.gguf`` and ``folder/result.json`` (atomically)."""
        return _save_run(folder, self.export, self.to_dict())


def _train_cell(
    cfg: SignalSearchConfig,
    data: SignalDataProvider,
    cell: Cell,
    features: int,
    seed: int,
    progress: ProgressFn | None,
) -> TrainedCell:
    t1 = time.perf_counter()
    model, history = _retrain(cfg, data, cell, features, seed, progress)
    t2 = time.perf_counter()
    kw = {"batch_size": cfg.eval_batch_size, "device": cfg.device, "draws": cfg.val_batches}
    val_metrics = evaluate(model, data, "val", **kw)
    test_metrics = evaluate(model, data, "test", **kw)
    assert val_metrics is not None
    # Every edge of the space, those that do not run (zero, or into/out of a dead node)
    # as zero: a searched alpha stays aligned with the exported edges.
    arch = DiscretizedArch(model.backbone.cell, model.num_parameters())  # type: ignore[union-attr]
    export_config = ExportConfig(
        model_name=cfg.model_name,
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        input_features=features,
        patch_len=cfg.patch_len,
        horizon_len=cfg.horizon_len,
        stride=cfg.stride,
        lookback=cfg.lookback,
    )
    timings = {"retrain_s": t2 - t1, "evaluate_s": time.perf_counter() - t2}
    describe = getattr(data, "describe", None)
    return TrainedCell(model, arch, export_config, val_metrics, test_metrics, history, timings,
                       cfg, describe() if callable(describe) else None)  # fmt: skip


def _prepared(cfg: SignalSearchConfig) -> SignalSearchConfig:
    """cfg validated, torch's threads set, and a drawn seed when cfg.seed is None."""
    if not isinstance(cfg, SignalSearchConfig):
        raise ValueError(f"cfg must be a SignalSearchConfig, got {type(cfg).__name__}")
    cfg.validate()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    return cfg if cfg.seed is not None else replace(cfg, seed=secrets.randbelow(2**31))


def train_cell(
    cfg: SignalSearchConfig,
    data: SignalDataProvider,
    cell: Cell,
    *,
    progress: ProgressFn | None = None,
) -> TrainedCell:
    """Train one given cell the way the pipeline retrains the searched one (same model,
    data, early stopping and evaluation; seeded by ``cfg.seed``): for a cell picked by
    hand or from ``nas enumerate``, and for the random-cell baseline."""
    cfg = _prepared(cfg)
    assert cfg.seed is not None
    cell.validate()
    features = _check_data(data, cfg)
    return _train_cell(cfg, data, cell, features, _trial_seed(cfg.seed, 10_000), progress)


def run_signal_nas(
    cfg: SignalSearchConfig,
    data: SignalDataProvider,
    *,
    progress: ProgressFn | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
) -> SignalSearchOutput:
    """Search, discretize, retrain, evaluate (see the module docstring).

    checkpoint: a folder for ``checkpoint.pt`` (written atomically every
    ``checkpoint_every`` steps and at each trial's end: weights, alpha, optimizer and
    RNG states, the data provider's batch order, step, finished trials). With
    ``resume=True`` a run continues from it and ends with the same result as an
    uninterrupted run with the same seed (bitwise on the same CPU and threads); a
    checkpoint of another config or version, or a corrupt one, is a ValueError.

    data: a :class:`~nas.SignalDataProvider` (e.g. :class:`~nas.WindowedSeries`) whose
    batches match cfg.lookback and cfg.horizon_len. progress: called with a dict per
    step, trial and retraining epoch (the CLI draws its progress bars from it).
    Raises ValueError for a bad config or data, RuntimeError when every trial failed.
    """
    cfg = _prepared(cfg)
    assert cfg.seed is not None
    features = _check_data(data, cfg)
    budget = _cell_budget(cfg, features)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rank, world = _dist()
    if world > 1 and cfg.parallel == "data" and cfg.order == 2:
        raise ValueError("order 2 is not data-parallel; use parallel='trials' (--parallel trials)")
    if world > 1 and cfg.parallel == "data" and cfg.batch_size % world:
        raise ValueError(
            f"batch_size {cfg.batch_size} must split evenly over the {world} processes"
        )
    mine = [t for t in range(cfg.num_trials) if cfg.parallel == "data" or t % world == rank]
    ckpt = None
    done: dict[int, SignalSearchResult] = {}
    start: Mapping[str, Any] | None = None
    if checkpoint is not None:
        name = CHECKPOINT_FILE if world == 1 else f"checkpoint.rank{rank}-of-{world}.pt"
        ckpt = _Checkpointer(checkpoint, checkpoint_every, cfg, name)
        state = ckpt.load() if resume else None
        if state is not None:
            done = {r.trial: r for r in map(_result_from_state, state["results"])}
            start = state["current"]
            t0 -= float(state["search_seconds"])
            _log.info(
                "resuming %s: %d finished trial(s)%s", checkpoint, len(done),
                f", trial {start['trial']} from step {start['step']}" if start else "",
            )  # fmt: skip
            for r in done.values():  # let a progress display catch up
                if progress is not None:
                    progress({"event": "trial", "trial": r.trial, "result": r})
    for t in mine:
        if t in done:
            continue
        here = start if start is not None and start["trial"] == t else None
        done[t] = _run_trial(cfg, data, t, _trial_seed(cfg.seed, t), features, budget,
                             progress, ckpt, here)  # fmt: skip
        if ckpt is not None:
            ckpt.save_results([done[k] for k in sorted(done)], time.perf_counter() - t0)
    results = [done[k] for k in sorted(done)]
    if world > 1 and cfg.parallel == "trials":  # every process gets every trial
        import torch.distributed as dist

        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, [_result_to_state(r) for r in results])
        results = sorted((_result_from_state(d) for p in parts for d in p), key=lambda r: r.trial)
    timings["search_s"] = time.perf_counter() - t0
    ok = [r for r in results if not r.failed]
    if not ok:
        reasons = "; ".join(f"trial {r.trial}: {r.reason}" for r in results)
        raise RuntimeError(f"all {len(results)} trials failed: {reasons}")
    best = min(ok, key=lambda r: (r.final_loss, r.trial))
    assert best.arch is not None
    _log.debug("search done in %.1f s; best trial %d (val %.6g): %s", timings["search_s"],
               best.trial, best.final_loss, best.arch.cell)  # fmt: skip
    trained = _train_cell(cfg, data, best.arch.cell, features, _trial_seed(cfg.seed, 10_000),
                          progress)  # fmt: skip
    timings.update(trained.timings)
    timings["total_s"] = time.perf_counter() - t0
    return SignalSearchOutput(
        best=best,
        all_results=results,
        export_config=trained.export_config,
        model=trained.model,
        arch=trained.arch,
        test_metrics=trained.test_metrics,
        val_metrics=trained.val_metrics,
        config=cfg,
        timings=timings,
        retrain_history=trained.history,
        data_info=trained.data_info,
    )


# --------------------------------------------------------------------------------------
# Export and load
# --------------------------------------------------------------------------------------


def export_signal_model(
    path: str | os.PathLike[str],
    model: SignalModel,
    arch: DiscretizedArch,
    cfg: ExportConfig,
    alpha: np.ndarray | None = None,
    space: SearchSpace | None = None,
) -> None:
    """Write a trained discrete model as GGUF: the cell, the config (with lookback and
    stride), every tensor of ``model.state_dict()`` by name, and (when given) the
    searched alpha; schema version 1. Refuses non-finite weights."""
    tensors = {k: v.detach().cpu() for k, v in model_tensors(model).items()}
    kwargs: dict[str, Any] = {}
    if alpha is not None and space is not None:
        kwargs = {"alphas": np.asarray(alpha, dtype=np.float32), "alpha_ops": list(space.ops)}
    export_gguf(path, arch, cfg, tensors, refuse_non_finite=True, schema_version=SCHEMA_VERSION,
                **kwargs)  # fmt: skip


def load_model(path: str | os.PathLike[str] | bytes) -> SignalModel:
    """Rebuild the trained model from a GGUF file written by :func:`run_signal_nas` /
    ``nas search`` alone; in eval mode, it reproduces the exported model's predictions
    exactly. A file that is not such an export is a :class:`~nas.GGUFFormatError`."""
    from .gguf_io import GGUFFormatError

    arch, cfg = load_nas_arch_from_gguf(path)
    missing = [
        f"ts.signal.{k}"
        for k in (
            "lookback",
            "stride",
            "hidden_dim",
            "num_layers",
            "input_features",
            "patch_len",
            "horizon_len",
        )  # fmt: skip
        if getattr(cfg, k) == 0
    ]
    if missing:
        raise GGUFFormatError(
            f"not a trained signal model (missing {', '.join(missing)}): "
            "written by export_gguf without a model?"
        )
    try:
        model = build_discrete_model(
            arch.cell,
            lookback=cfg.lookback,
            horizon=cfg.horizon_len,
            num_features=cfg.input_features,
            patch_len=cfg.patch_len,
            stride=cfg.stride,
            hidden=cfg.hidden_dim,
            num_layers=cfg.num_layers,
        )
    except ValueError as exc:
        raise GGUFFormatError(f"the stored config does not make a model: {exc}") from None
    tensors = load_tensors(path)
    expected = model.state_dict()
    if set(tensors) != set(expected):
        extra = sorted(set(tensors) - set(expected))
        lost = sorted(set(expected) - set(tensors))
        raise GGUFFormatError(
            f"tensors do not match the architecture: missing {lost[:5]}, unexpected {extra[:5]}"
        )
    state = {}
    for name, ref in expected.items():
        arr = tensors[name]
        if tuple(arr.shape) != tuple(ref.shape):
            raise GGUFFormatError(
                f"tensor {name!r} has shape {list(arr.shape)}, the architecture needs "
                f"{list(ref.shape)}"
            )
        state[name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    model.load_state_dict(state)
    model.eval()
    return model
