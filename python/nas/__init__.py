"""nas: Neural Architecture Search for small time-series models, with native kernels.

The public API is re-exported here; see README.md for a tour.
"""

from __future__ import annotations

from ._native import build_info, has_native
from .calibrate import measure_cells, run_calibration
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
from .latency import (
    FEATURE_SETS,
    CalibrationPoint,
    LatencyEstimator,
    expected_latency,
    load_estimator,
    r_squared,
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
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "CalibrationPoint",
    "Cell",
    "DiscretizedArch",
    "Edge",
    "HWProfile",
    "LatencyEstimator",
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
    "expected_latency",
    "h200",
    "has_native",
    "hw_profile",
    "hw_profiles",
    "load_estimator",
    "make_cell",
    "measure_cells",
    "native_op_names",
    "op_cost",
    "op_costs_1d",
    "op_feature_table",
    "op_params_1d",
    "parse_ops",
    "r_squared",
    "run_calibration",
    "signal_ops",
]
