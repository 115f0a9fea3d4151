"""Native ops (``torch.ops.nas.*``) with their typed wrappers, fakes and autograd.

Each op lives in ``nas/ops/<op>.py``; its pure-PyTorch reference, the spec the tests
and benchmarks compare against, lives in ``nas/ops/_reference.py``.
"""

from . import _reference
from .decode_cells import decode_cells
from .enumerate_cells import (
    CellScan,
    enumerate_count,
    enumerate_pareto,
    enumerate_score_cells,
    enumerate_search_top_k,
    enumerate_top_k,
)
from .mixed_op import mixed_op

# Every op registered by csrc/ops.cpp, for build checks (bench/build_cuda.sh) and tests.
NATIVE_OPS: tuple[str, ...] = (
    "decode_cells",
    "enumerate_score_cells",
    "enumerate_top_k",
    "enumerate_count",
    "enumerate_pareto",
    "enumerate_search_top_k",
    "mixed_op",
    "mixed_op_backward",
)


def native_op_names() -> tuple[str, ...]:
    """Names of the ops in ``torch.ops.nas`` that have CPU (and, if built, CUDA) kernels."""
    return NATIVE_OPS


__all__ = [
    "CellScan",
    "NATIVE_OPS",
    "_reference",
    "decode_cells",
    "enumerate_count",
    "enumerate_pareto",
    "enumerate_score_cells",
    "enumerate_search_top_k",
    "enumerate_top_k",
    "mixed_op",
    "native_op_names",
]
