"""nas: Neural Architecture Search for small time-series models, with native kernels.

The public API is re-exported here; see README.md for a tour.
"""

from __future__ import annotations

from ._native import build_info, has_native

# The module nas.signal_ops shares its name with the function nas.signal_ops(); load the
# module first so that the function below wins the attribute and a later
# `from nas.signal_ops import ...` (module already loaded) does not overwrite it.
from . import signal_ops as _signal_ops_module  # noqa: F401  (isort: skip)
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
from .darts import DARTSCell, DARTSLayer, DARTSOptimizer, DARTSStepResult, SuperNet
from .discretize import cell_log_prob, discretize
from .gguf_io import (
    ExportConfig,
    GGUFFormatError,
    export_gguf,
    inspect_gguf,
    load_alphas,
    load_nas_arch_from_gguf,
    load_tensors,
    validate_export_round_trip,
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
    default_signal_ops,
    default_signal_search_space,
    make_cell,
    parse_ops,
)

__version__ = "0.1.0"

__all__ = [
    "FEATURE_NAMES",
    "Cell",
    "DARTSCell",
    "DARTSLayer",
    "DARTSOptimizer",
    "DARTSStepResult",
    "DiscretizedArch",
    "Edge",
    "ExportConfig",
    "GGUFFormatError",
    "HWProfile",
    "OpCost",
    "OpType",
    "SearchSpace",
    "SuperNet",
    "__version__",
    "all_ops",
    "as_op",
    "build_info",
    "cell_cost",
    "cell_log_prob",
    "cell_params",
    "default_op_costs",
    "default_op_params",
    "default_signal_ops",
    "default_signal_search_space",
    "dgx_spark",
    "discretize",
    "export_gguf",
    "h200",
    "has_native",
    "hw_profile",
    "hw_profiles",
    "inspect_gguf",
    "load_alphas",
    "load_nas_arch_from_gguf",
    "load_tensors",
    "make_cell",
    "native_op_names",
    "op_cost",
    "op_costs_1d",
    "op_feature_table",
    "op_params_1d",
    "parse_ops",
    "validate_export_round_trip",
]
