"""Per-op cost tables (FLOPs, memory bytes, parameters) and hardware profiles.

Two families of tables, computed by one set of formulas:

* ``default_op_costs()`` / ``default_op_params()``: the seed's numbers, each op modelled
  as a 2-D op on a 32x32 map with 64 channels and 4-byte floats.
* ``op_costs_1d()`` / ``op_params_1d()``: the same ops as 1-D ops along a sequence of
  ``length`` patches with ``channels`` channels (what the signal models run: cells on
  [batch x series, patches, hidden]).

Formulas, with S spatial positions (32*32 in 2-D, ``length`` in 1-D), C channels, B
batch, b bytes per element, a = B*S*C*b the bytes of one activation tensor, and k the
kernel's taps (9 or 25 for the seed's 3x3 / 5x5, 3 or 5 for 1-D):

| op            | params      | FLOPs (multiply-add = 2)   | memory bytes        |
|---------------|-------------|----------------------------|---------------------|
| conv_k        | k*C*C       | 2 * B*S * k*C*C            | 2a + params*b       |
| sep_conv_k    | k*C + C*C   | 2 * B*S * (k*C + C*C)      | 3a + params*b       |
| avg/max_pool  | 0           | B*S*C * k                  | 2a                  |
| skip_connect  | 0           | 0                          | a                   |
| zero          | 0           | 0                          | 0                   |

conv reads its input and writes its output (2a); the separable conv also writes its
depthwise intermediate (3a, the seed's count); skip_connect is one tensor copy. The
counts cover the convolutions themselves: no bias, and the normalisation and
activation that the signal ops wrap around them are not counted (they are O(a)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .space import Cell, OpType, as_op


@dataclass(frozen=True)
class OpCost:
    """Per-instance cost of an op: FLOPs and bytes of memory traffic (read + written)."""

    flops: float
    mem_bytes: float

    def __add__(self, other: OpCost) -> OpCost:
        return OpCost(self.flops + other.flops, self.mem_bytes + other.mem_bytes)


_KERNEL_TAPS_1D = {
    OpType.CONV_3X3: 3,
    OpType.CONV_5X5: 5,
    OpType.SEP_CONV_3X3: 3,
    OpType.SEP_CONV_5X5: 5,
    OpType.AVG_POOL_3X3: 3,
    OpType.MAX_POOL_3X3: 3,
}


def _params(op: OpType, taps: int, channels: int) -> int:
    if op in (OpType.CONV_3X3, OpType.CONV_5X5):
        return taps * channels * channels
    if op in (OpType.SEP_CONV_3X3, OpType.SEP_CONV_5X5):
        return taps * channels + channels * channels
    return 0


def _cost(op: OpType, taps: int, positions: int, channels: int, dtype_bytes: int) -> OpCost:
    act = positions * channels * dtype_bytes
    params = _params(op, taps, channels)
    if op in (OpType.CONV_3X3, OpType.CONV_5X5):
        return OpCost(2.0 * positions * params, 2.0 * act + params * dtype_bytes)
    if op in (OpType.SEP_CONV_3X3, OpType.SEP_CONV_5X5):
        return OpCost(2.0 * positions * params, 3.0 * act + params * dtype_bytes)
    if op in (OpType.AVG_POOL_3X3, OpType.MAX_POOL_3X3):
        return OpCost(float(positions * channels * taps), 2.0 * act)
    if op == OpType.SKIP_CONNECT:
        return OpCost(0.0, float(act))
    return OpCost(0.0, 0.0)  # zero


def _taps(op: OpType, dims: int) -> int:
    return _KERNEL_TAPS_1D.get(op, 1) ** dims


def default_op_costs() -> dict[OpType, OpCost]:
    """The seed's cost table: 2-D ops on a 32x32 map, 64 channels, 4-byte floats."""
    return {op: _cost(op, _taps(op, 2), 32 * 32, 64, 4) for op in OpType}


def default_op_params() -> dict[OpType, int]:
    """The seed's parameter counts: 2-D ops with 64 input and output channels."""
    return {op: _params(op, _taps(op, 2), 64) for op in OpType}


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def op_costs_1d(
    length: int, channels: int, batch: int = 1, dtype_bytes: int = 4
) -> dict[OpType, OpCost]:
    """Costs of the ops as 1-D ops over ``length`` positions (patches) with ``channels``
    channels, for a batch of ``batch`` sequences (see the module docstring)."""
    length = _check_positive("length", length)
    channels = _check_positive("channels", channels)
    batch = _check_positive("batch", batch)
    dtype_bytes = _check_positive("dtype_bytes", dtype_bytes)
    return {op: _cost(op, _taps(op, 1), batch * length, channels, dtype_bytes) for op in OpType}


def op_params_1d(channels: int) -> dict[OpType, int]:
    """Parameter counts of the 1-D ops with ``channels`` input and output channels."""
    channels = _check_positive("channels", channels)
    return {op: _params(op, _taps(op, 1), channels) for op in OpType}


def _lookup(table: Mapping[OpType, object], op: OpType | str, what: str):
    try:
        key = as_op(op)
    except ValueError:
        raise ValueError(f"no {what} for unknown op {op!r}") from None
    if key not in table:
        raise ValueError(f"the {what} table has no entry for op {key.value!r}")
    return table[key]


def op_cost(op: OpType | str, costs: Mapping[OpType, OpCost] | None = None) -> OpCost:
    """The cost of one op; an op missing from the table is an error, never free."""
    return _lookup(costs if costs is not None else default_op_costs(), op, "cost")


def cell_cost(cell: Cell, costs: Mapping[OpType, OpCost] | None = None) -> OpCost:
    """Summed FLOPs and bytes over the cell's edges."""
    table = costs if costs is not None else default_op_costs()
    total = OpCost(0.0, 0.0)
    for e in cell.edges:
        total = total + _lookup(table, e.op, "cost")
    return total


def cell_params(cell: Cell, params: Mapping[OpType, int] | None = None) -> int:
    """Summed parameter count over the cell's edges."""
    table = params if params is not None else default_op_params()
    return int(sum(_lookup(table, e.op, "params") for e in cell.edges))


FEATURE_NAMES: tuple[str, ...] = ("flops", "mem_bytes", "params")


def op_feature_table(
    ops: Sequence[OpType | str],
    costs: Mapping[OpType, OpCost] | None = None,
    params: Mapping[OpType, int] | None = None,
) -> np.ndarray:
    """A [len(ops), 3] float64 table with columns FEATURE_NAMES (flops, mem_bytes,
    params), one row per op in ``ops`` order: the per-op features the scoring kernels
    sum over a cell's edges."""
    cost_t = costs if costs is not None else default_op_costs()
    param_t = params if params is not None else default_op_params()
    rows = []
    for op in ops:
        c = _lookup(cost_t, op, "cost")
        rows.append((c.flops, c.mem_bytes, float(_lookup(param_t, op, "params"))))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 3)


@dataclass(frozen=True)
class HWProfile:
    """A target device: peak FP32 throughput (GFLOP/s) and memory bandwidth (GB/s).

    Each rate is a finite number >= 0; a rate of 0 drops its term from the seed's
    latency model (``nas.LatencyEstimator``). Negative, NaN or infinite rates are a
    ValueError naming the field."""

    name: str
    flops_throughput_gflops: float
    mem_bandwidth_gbs: float

    def __post_init__(self) -> None:
        for field in ("flops_throughput_gflops", "mem_bandwidth_gbs"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"HWProfile.{field} must be a number, got {v!r}")
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(
                    f"HWProfile.{field} is {v!r}, must be finite and >= 0 (0 drops the term)"
                )


def dgx_spark() -> HWProfile:
    """NVIDIA DGX Spark (GB10), with the seed's figures: 1000 GFLOP/s, 200 GB/s.

    Kept for compatibility with the seed. NVIDIA's DGX Spark datasheet gives 273 GB/s
    of LPDDR5x bandwidth, and its "1 PFLOP" is sparse FP4, not FP32: calibrate
    (``nas.latency``) against measurements rather than trusting either number.
    """
    return HWProfile("DGX Spark GB10", 1000.0, 200.0)


def h200() -> HWProfile:
    """NVIDIA H200 SXM: 67 TFLOP/s FP32 (non-tensor) and 4.8 TB/s HBM3e bandwidth,
    from NVIDIA's H200 Tensor Core GPU datasheet (SXM form factor)."""
    return HWProfile("NVIDIA H200 SXM", 67_000.0, 4_800.0)


def cpu_profile() -> HWProfile:
    """A nominal host-CPU profile (100 GFLOP/s, 20 GB/s). It only sets the units of the
    seed model's compute/memory time; calibration fits alpha and beta to the truth."""
    return HWProfile("host cpu (nominal)", 100.0, 20.0)


def hw_profiles() -> dict[str, HWProfile]:
    """Named profiles, for the CLI's ``--hw``."""
    return {"dgx_spark": dgx_spark(), "h200": h200()}


def hw_profile(name: str) -> HWProfile:
    profiles = hw_profiles()
    if name not in profiles:
        raise ValueError(f"unknown hardware profile {name!r}; known: {', '.join(profiles)}")
    return profiles[name]
