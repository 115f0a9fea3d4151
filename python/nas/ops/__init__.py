"""Native ops (``torch.ops.nas.*``) with their typed wrappers, fakes and autograd.

Each op lives in ``nas/ops/<op>.py``; its pure-PyTorch reference, the spec the tests
and benchmarks compare against, lives in ``nas/ops/_reference.py``.
"""

from .._native import register_reference
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


# The enumerate wrappers (nas/ops/enumerate_cells.py) call call_native without their
# reference: register theirs here, by name, until they pass it themselves.
for _name in NATIVE_OPS:
    if _name.startswith("enumerate_"):
        register_reference(_name, getattr(_reference, _name))
del _name


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
