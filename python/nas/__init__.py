"""nas: Neural Architecture Search for small time-series models, with native kernels.

The public API is re-exported here; see README.md for a tour.
"""

from __future__ import annotations

from ._native import build_info, has_native
from .costs import (
    FEATURE_NAMES,
    HWProfile,
    OpCost,
    cell_cost,
    cell_params,
    default_op_costs,
    default_op_params,
    dgx_spark,
    h200,
    hw_profile,
    hw_profiles,
    op_cost,
    op_costs_1d,
    op_feature_table,
    op_params_1d,
)
from .enumerate import (
    CellCount,
    Histogram,
    ParetoFront,
    TopK,
    count_cells,
    latency_coeffs,
    pareto_front,
    score_cells,
    score_histogram,
    search_top_k,
    top_k_cells,
)
from .ops import native_op_names
from .space import (
    Cell,
    DiscretizedArch,
    Edge,
    OpType,
    SearchSpace,
    all_ops,
    as_op,
    default_signal_search_space,
    make_cell,
    parse_ops,
    signal_ops,
)

__version__ = "0.1.0"

__all__ = [
    "top_k_cells",
    "search_top_k",
    "score_histogram",
    "score_cells",
    "pareto_front",
    "latency_coeffs",
    "count_cells",
    "TopK",
    "ParetoFront",
    "Histogram",
    "CellCount",
    "FEATURE_NAMES",
    "Cell",
    "DiscretizedArch",
    "Edge",
    "HWProfile",
    "OpCost",
    "OpType",
    "SearchSpace",
    "__version__",
    "all_ops",
    "as_op",
    "build_info",
    "cell_cost",
    "cell_params",
    "default_op_costs",
    "default_op_params",
    "default_signal_search_space",
    "dgx_spark",
    "h200",
    "has_native",
    "hw_profile",
    "hw_profiles",
    "make_cell",
    "native_op_names",
    "op_cost",
    "op_costs_1d",
    "op_feature_table",
    "op_params_1d",
    "parse_ops",
    "signal_ops",
]
