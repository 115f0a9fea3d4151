"""The op types a cell edge can carry, how op lists are written, and the order of a
cell's edges.

A leaf module (it imports nothing from ``nas``), so that every other module, the
native-op references included, can use the op types without an import cycle;
``nas.space`` re-exports all of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

__all__ = ["OpType", "all_ops", "as_op", "default_signal_ops", "edge_list", "parse_ops"]


class OpType(str, Enum):
    """An operation that can be placed on a cell edge."""

    CONV_3X3 = "conv_3x3"
    CONV_5X5 = "conv_5x5"
    SEP_CONV_3X3 = "sep_conv_3x3"
    SEP_CONV_5X5 = "sep_conv_5x5"
    AVG_POOL_3X3 = "avg_pool_3x3"
    MAX_POOL_3X3 = "max_pool_3x3"
    SKIP_CONNECT = "skip_connect"
    ZERO = "zero"

    def __str__(self) -> str:
        return self.value


_OPS_BY_NAME = {op.value: op for op in OpType}


def all_ops() -> list[OpType]:
    """The 8 op types, in their canonical order."""
    return list(OpType)


def default_signal_ops() -> list[OpType]:
    """The parameter-free ops of the default signal space."""
    return [OpType.AVG_POOL_3X3, OpType.MAX_POOL_3X3, OpType.SKIP_CONNECT, OpType.ZERO]


def as_op(op: OpType | str) -> OpType:
    """``op`` as an OpType; an unknown name is a ValueError that lists the known ones."""
    if isinstance(op, OpType):
        return op
    if isinstance(op, str) and op in _OPS_BY_NAME:
        return _OPS_BY_NAME[op]
    known = ", ".join(_OPS_BY_NAME)
    raise ValueError(f"unknown op {op!r}; known ops: {known}")


def parse_ops(spec: str | Sequence[OpType | str] | None) -> list[OpType]:
    """An op list from ``None``/"all" (all 8), "signal" (pools, skip, zero), a
    comma-separated string of names, or a sequence of names/OpTypes."""
    if spec is None:
        return all_ops()
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "all":
            return all_ops()
        if key == "signal":
            return default_signal_ops()
        spec = [s.strip() for s in key.split(",") if s.strip()]
    if not isinstance(spec, Iterable):
        raise ValueError(f"ops must be a str or a sequence of op names, got {spec!r}")
    return [as_op(op) for op in spec]


def edge_list(num_nodes: int) -> list[tuple[int, int]]:
    """The edges (i, j), i < j, of a ``num_nodes`` cell in row-major order: the edge
    order of every space, op-code row and kernel."""
    return [(i, j) for i in range(num_nodes) for j in range(i + 1, num_nodes)]
