"""Cell features of the latency models: pure functions of (feature set, op list,
hardware rates, per-op costs, cells), no estimator object.

:class:`nas.latency.LatencyEstimator` is a linear model over one of seven named feature
sets (``FEATURE_SETS``); this module computes them:

* ``"seed"``: the seed's two features, summed over ALL edges of the cell:
  ``compute_time = sum(FLOPs) / (GFLOPS * 1e9)`` and
  ``memory_time = sum(bytes) / (GB/s * 1e9)`` (a term is 0 when its rate is <= 0),
  with weights ``alpha`` and ``beta`` (1.0 before calibration) and ``bias`` (0.0).
* ``"lut"``: an additive lookup table over the edges the cell module actually runs
  (live edges, below): one count per non-``zero`` op of the estimator's op list
  (``n_<op>``), plus ``launches``, the kernels dispatched (each op's own kernels, the
  adds that sum a node's inputs, and the ``zeros_like`` of a dead output). Before
  calibration each count weighs its op's seed time (compute + memory time), so an
  uncalibrated ``"lut"`` model is the seed model restricted to live edges.
* ``"layout"``: the lookup table keyed by (op, memory layout of its input):
  ``n_<op>@C`` / ``n_<op>@T``, plus ``adds_same`` / ``adds_mixed`` (node-sum adds of
  tensors with the same / different layouts); a cell whose output receives nothing
  (its ``zeros_like``, rare) costs the bias alone. Measured on CPU, the
  same op costs up to 18x more on the other layout (avg_pool on a conv's transposed
  output: ~650 us against ~36 us on the cell input at [16, 64, 128]), which no
  per-op table can express. Layout "C" is contiguous [B, N, D] (the cell input);
  "T" is contiguous [B, D, N] seen as [B, N, D] (a Conv1d's output after the
  transpose back); ``OP_OUTPUT_T`` gives each op's output layout.
* ``"layout_bw"``: ``"layout"`` plus ``bw_<op>``, per-op counts of the edges a
  backward pass runs (live edges from which the output is reachable through live
  edges), for ``mode="train"`` measurements. Not split by layout: an edge that runs
  forward but not backward is rare, and finer columns were all-zero on 150 cells.
* ``"layout_grad"``: ``"layout"`` plus what a training step's backward runs, per edge
  the output's gradient reaches (through live edges): ``gw_<op>``, the weight
  gradients of a conv edge, ``gx_<op>@C|T``, the input gradient of an edge whose
  source needs one (the cell input does not: it has no ``requires_grad``, so a pool
  reading it has no backward at all, and a node fed only by such edges needs none
  either), by the layout of the edge's input, and ``g_accum``, the gradient
  accumulations (a node whose gradient comes from k > 1 edges adds k - 1 times).
  Some of these columns are near-collinear with the forward counts: fit with
  ``ridge > 0`` (``nas calibrate`` does).
* ``"layout_scaled"``: the ``"layout"`` counts each multiplied by the op's seed time at
  the point's shape (compute + memory time from ``nas.op_costs_1d``; the adds by the
  memory time of reading two node tensors and writing one), plus ``launches``: a
  per-(op, layout) factor on a shape-aware cost, and a fixed cost per kernel, so that
  one model covers several shapes. At a single shape its columns are multiples of
  ``"layout"``'s and ``launches`` depends on them (rank-deficient without ridge).
* ``"rich"``: ``"lut"`` plus ``compute_time`` and ``memory_time`` over live edges. At a
  single input shape FLOPs and bytes are exact multiples of the per-op counts, so this
  design is rank-deficient unless the calibration points span several shapes
  (``CalibrationPoint.shape``, with shape-aware 1-D op costs, ``nas.op_costs_1d``).

Live edges: :class:`nas.signal_ops.CellModule` skips a ``zero`` edge and every edge
whose source node received nothing (a node whose incoming edges are all skipped), so
their cost is never paid. Node 0 (the input) is always live. This structure is what
makes every set but ``"seed"`` non-additive over edges: :func:`cell_walk` computes it
vectorised over a batch of cells, one step per edge, and that ONE walk gives liveness,
layouts and gradient needs to every set (the backward sets add a backward
reachability pass over its result).

Features are raw (FLOPs, bytes, counts; ``"layout_scaled"``'s counts in seconds); the
estimator divides them into model units. Cells come as canonical op codes (the index
of each op in ``nas.all_ops()``, ``CANON``) on the full edge list of their node count
(row-major (i, j), i < j; absent edges are ``zero``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .costs import HWProfile, OpCost
from .space import Cell, OpType, SearchSpace, all_ops, as_op, edge_list

FEATURE_SETS: tuple[str, ...] = (
    "seed",
    "lut",
    "layout",
    "layout_bw",
    "layout_grad",
    "layout_scaled",
    "rich",
)
LAYOUT_SETS = ("layout", "layout_bw", "layout_grad", "layout_scaled")

# Kernels one op dispatches in CellModule's forward on CPU (views such as transpose
# are free): ReLU + conv; ReLU + depthwise + pointwise; one pool; identity; skipped.
OP_LAUNCHES: dict[OpType, int] = {
    OpType.CONV_3X3: 2,
    OpType.CONV_5X5: 2,
    OpType.SEP_CONV_3X3: 3,
    OpType.SEP_CONV_5X5: 3,
    OpType.AVG_POOL_3X3: 1,
    OpType.MAX_POOL_3X3: 1,
    OpType.SKIP_CONNECT: 0,
    OpType.ZERO: 0,
}

# Memory layout of an op's output given its input's, for the [B, N, D] node tensors of
# CellModule on CPU: "C" is contiguous [B, N, D] (the cell input), "T" is contiguous
# [B, D, N] seen as [B, N, D] (what a Conv1d leaves after the transpose back). True = T.
# Checked against the real modules by tests/test_latency.py.
OP_OUTPUT_T: dict[OpType, tuple[bool, bool]] = {  # (output is T for input C, for input T)
    OpType.CONV_3X3: (True, True),
    OpType.CONV_5X5: (True, True),
    OpType.SEP_CONV_3X3: (True, True),
    OpType.SEP_CONV_5X5: (True, True),
    OpType.AVG_POOL_3X3: (False, False),  # copies a T input to C first (signal_ops)
    OpType.MAX_POOL_3X3: (True, True),
    OpType.SKIP_CONNECT: (False, True),
    OpType.ZERO: (False, True),  # never run; placeholder
}
LAYOUTS: tuple[str, ...] = ("C", "T")
KERNEL_OPS = (OpType.CONV_3X3, OpType.CONV_5X5, OpType.SEP_CONV_3X3, OpType.SEP_CONV_5X5)

CANON: list[OpType] = all_ops()  # canonical op codes used internally
ZERO_CODE = CANON.index(OpType.ZERO)
_OUT_T = torch.tensor([OP_OUTPUT_T[op] for op in CANON], dtype=torch.bool)  # [8, 2]
_HAS_WEIGHTS = torch.tensor([op in KERNEL_OPS for op in CANON], dtype=torch.bool)  # [8]


def check_feature_set(features: str) -> str:
    """``features`` if it names one of ``FEATURE_SETS``, else ValueError."""
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {features!r}; known: {', '.join(FEATURE_SETS)}")
    return features


def count_ops(ops: Sequence[OpType]) -> list[OpType]:
    """The ops of ``ops`` that get count columns: all but ``zero`` (never runs)."""
    return [op for op in ops if op != OpType.ZERO]


def feature_columns(features: str, ops: Sequence[OpType]) -> list[str]:
    """Names of the features of set ``features`` over the op list ``ops``, in order."""
    check_feature_set(features)
    counted = count_ops(ops)
    lut = [f"n_{op.value}" for op in counted] + ["launches"]
    if features == "seed":
        return ["flops", "mem_bytes"]
    if features == "lut":
        return lut
    if features in LAYOUT_SETS:
        per_op = [f"n_{op.value}@{lay}" for op in counted for lay in LAYOUTS]
        cols = per_op + ["adds_same", "adds_mixed"]
        if features == "layout_bw":
            cols += [f"bw_{op.value}" for op in counted]
        if features == "layout_grad":
            convs = [op for op in counted if op in KERNEL_OPS]
            cols += [f"gw_{op.value}" for op in convs]
            cols += [f"gx_{op.value}@{lay}" for op in counted for lay in LAYOUTS]
            cols += ["g_accum"]
        if features == "layout_scaled":
            cols += ["launches"]
        return cols
    return lut + ["flops", "mem_bytes"]


def rate_div(rate: float) -> float:
    """A rate (GFLOP/s, GB/s) in units per second; 0 for a rate <= 0 (its term drops)."""
    return rate * 1e9 if rate > 0 else 0.0


def seed_time(op: OpType, costs: Mapping[OpType, OpCost], hw: HWProfile) -> float:
    """compute + memory time of ``op`` under ``costs`` on ``hw`` (seconds)."""
    c = costs[op]
    g, b = rate_div(hw.flops_throughput_gflops), rate_div(hw.mem_bandwidth_gbs)
    return (c.flops / g if g > 0 else 0.0) + (c.mem_bytes / b if b > 0 else 0.0)


def add_scale(costs: Mapping[OpType, OpCost], hw: HWProfile) -> float:
    """``"layout_scaled"``: the memory time of a node-sum add (read two node tensors,
    write one); skip_connect's bytes are those of one node tensor."""
    b = rate_div(hw.mem_bandwidth_gbs)
    return 3.0 * costs[OpType.SKIP_CONNECT].mem_bytes / b if b > 0 else 0.0


def op_raw_table(
    features: str, ops: Sequence[OpType], costs: Mapping[OpType, OpCost], hw: HWProfile
) -> np.ndarray:
    """[8, F] raw per-op features over the canonical op order (additive part)."""
    cols = feature_columns(features, ops)
    scaled = features == "layout_scaled"
    rows = []
    for op in CANON:
        row = []
        for col in cols:
            if col == "flops":
                row.append(costs[op].flops)
            elif col == "mem_bytes":
                row.append(costs[op].mem_bytes)
            elif col == "launches":
                # own kernels + the add into its node; the first input of a node is
                # free, which the per-cell structural term subtracts (-live nodes)
                row.append(0.0 if op == OpType.ZERO else OP_LAUNCHES[op] + 1.0)
            elif col == "adds_same":
                # every non-zero edge adds into its node (the first input is free:
                # the per-cell term subtracts one add per live node)
                add = add_scale(costs, hw) if scaled else 1.0
                row.append(0.0 if op == OpType.ZERO else add)
            elif col == "adds_mixed":
                row.append(0.0)
            elif col.startswith(("bw_", "gw_")):  # in a supernet every edge runs backward
                row.append(1.0 if col[3:] == op.value else 0.0)
            elif col == "g_accum":
                row.append(0.0)
            elif "@" in col:
                # layout-averaged: an op's input layout depends on the cell around it
                name = col.split("@")[0]
                hit = name in (f"n_{op.value}", f"gx_{op.value}")
                scale = seed_time(op, costs, hw) if scaled else 1
                row.append(0.5 * scale if hit else 0.0)
            else:
                row.append(1.0 if col == f"n_{op.value}" else 0.0)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(CANON), len(cols))


@dataclass(frozen=True)
class CellWalk:
    """What :class:`nas.signal_ops.CellModule` runs for a batch of n cells, from ONE walk
    over the edges in its order (into node j, by increasing source): ``edge_live`` [n, E]
    (row-major edge order, ``k_of[(i, j)]``), ``in_t`` [n, E] (the edge's input has the
    transposed layout "T"), per node ``node_live`` / ``node_t`` / ``node_g`` (whether its
    value needs a gradient: the input does not; a node does when an edge into it has
    weights or reads a node that needs one), and the node-sum adds ``same`` / ``mixed``
    [n] (the added tensor has / has not the node's layout: ``a + b`` keeps ``a``'s)."""

    k_of: dict[tuple[int, int], int]
    edge_live: torch.Tensor
    in_t: torch.Tensor
    node_live: list[torch.Tensor]
    node_t: list[torch.Tensor]
    node_g: list[torch.Tensor]
    same: torch.Tensor
    mixed: torch.Tensor

    @property
    def num_nodes(self) -> int:
        """The cell's node count (``node_t`` has one entry per node; ``node_live``
        always has the input's)."""
        return len(self.node_t)


def cell_walk(num_nodes: int, codes: torch.Tensor) -> CellWalk:
    """The :class:`CellWalk` of canonical op codes [n, E] on the full edge list of
    ``num_nodes`` (absent edges are ``zero``); vectorised over the n cells."""
    n = codes.shape[0]
    k_of = {e: k for k, e in enumerate(edge_list(num_nodes))}
    edge_live = torch.zeros(codes.shape, dtype=torch.bool)
    in_t = torch.zeros(codes.shape, dtype=torch.bool)
    node_live = [torch.ones(n, dtype=torch.bool)] + [
        torch.zeros(n, dtype=torch.bool) for _ in range(num_nodes - 1)
    ]
    node_t = [torch.zeros(n, dtype=torch.bool) for _ in range(num_nodes)]
    node_g = [torch.zeros(n, dtype=torch.bool) for _ in range(num_nodes)]
    same = torch.zeros(n, dtype=torch.float64)
    mixed = torch.zeros(n, dtype=torch.float64)
    for j in range(1, num_nodes):
        for i in range(j):
            k = k_of[(i, j)]
            c = codes[:, k]
            live = (c != ZERO_CODE) & node_live[i]
            edge_live[:, k], in_t[:, k] = live, node_t[i]
            y_t = _OUT_T[c, node_t[i].to(torch.int64)]
            adds = live & node_live[j]
            same += (adds & (y_t == node_t[j])).to(torch.float64)
            mixed += (adds & (y_t != node_t[j])).to(torch.float64)
            node_t[j] = torch.where(live & ~node_live[j], y_t, node_t[j])
            node_live[j] = node_live[j] | live
            node_g[j] = node_g[j] | (live & (_HAS_WEIGHTS[c] | node_g[i]))
    return CellWalk(k_of, edge_live, in_t, node_live, node_t, node_g, same, mixed)


def layout_features(
    features: str,
    ops: Sequence[OpType],
    walk: CellWalk,
    codes: torch.Tensor,
    costs: Mapping[OpType, OpCost],
    hw: HWProfile,
) -> np.ndarray:
    """The features [n, F] of the layout sets for canonical codes [n, E] and their
    :class:`CellWalk`: live edges counted per (op, input layout), and node-sum adds
    split by whether the added tensor has the node's layout (CellModule's order: into
    node j, edges by increasing src; ``a + b`` keeps the layout of ``a``, the node's
    first input); the backward columns of ``"layout_bw"`` / ``"layout_grad"``; for
    ``"layout_scaled"`` the counts times their seed times at ``costs`` on ``hw``."""
    n, num_nodes = codes.shape[0], walk.num_nodes
    cols = feature_columns(features, ops)
    counted = count_ops(ops)
    n_ops = len(CANON)
    dump = len(cols)  # the column dead edges (and ops never counted) land in

    def key_table(prefix: str, by_layout: bool = True) -> torch.Tensor:
        # column of (op, input layout) keys c * 2 + t for columns f"{prefix}{op}@{lay}"
        table = torch.full((n_ops * 2,), dump, dtype=torch.int64)
        for op in counted:
            for t, lay in enumerate(LAYOUTS):
                name = f"{prefix}{op.value}" + (f"@{lay}" if by_layout else "")
                if name in cols:
                    table[CANON.index(op) * 2 + t] = cols.index(name)
        return table

    col_of = key_table("n_")
    has_w = _HAS_WEIGHTS
    node_live, node_g, same, mixed = walk.node_live, walk.node_g, walk.same, walk.mixed
    edge_cols = []  # per edge: Tensor[n] feature column it counts in (dump if dead)
    edge_info = []  # per edge: (src, dst, live [n], (op, layout) key [n], op [n])
    for j in range(1, num_nodes):  # CellModule's order
        for i in range(j):
            k = walk.k_of[(i, j)]
            c, live = codes[:, k], walk.edge_live[:, k]
            key = c * 2 + walk.in_t[:, k].to(torch.int64)
            edge_cols.append(torch.where(live, col_of[key], dump))
            edge_info.append((i, j, live, key, c))
    extra: dict[str, torch.Tensor] = {}
    if features in ("layout_bw", "layout_grad"):
        # backward runs on the live edges from which the output is reachable through
        # live edges (a node whose result never reaches the output gets no gradient)
        reach = [torch.zeros(n, dtype=torch.bool) for _ in range(num_nodes)]
        reach[-1] = node_live[-1].clone()
        for i, j, live, *_ in sorted(edge_info, key=lambda t: -t[1]):
            reach[i] = reach[i] | (live & reach[j])
        if features == "layout_bw":
            bw_of = key_table("bw_", by_layout=False)
            for _, j, live, key, _ in edge_info:
                edge_cols.append(torch.where(live & reach[j], bw_of[key], dump))
        else:
            # no gradient flows at all when the output needs none (a cell of pools)
            runs = node_g[-1]
            gw_of, gx_of = key_table("gw_", by_layout=False), key_table("gx_")
            fan = [torch.zeros(n, dtype=torch.float64) for _ in range(num_nodes)]
            for i, j, live, key, c in edge_info:
                bw = live & reach[j] & runs
                edge_cols.append(torch.where(bw & has_w[c], gw_of[key], dump))
                gx = bw & node_g[i]
                edge_cols.append(torch.where(gx, gx_of[key], dump))
                fan[i] += gx.to(torch.float64)
            extra["g_accum"] = sum(torch.clamp(f - 1, min=0) for f in fan)
    width = dump + 1
    if not edge_cols:
        edge_cols.append(torch.full((n,), dump, dtype=torch.int64))
    flat = torch.arange(n).unsqueeze(1) * width + torch.stack(edge_cols, dim=1)  # [n, E']
    feats = torch.bincount(flat.reshape(-1), minlength=n * width).reshape(n, width)
    feats = feats.to(torch.float64)[:, :dump]
    feats[:, cols.index("adds_same")] = same
    feats[:, cols.index("adds_mixed")] = mixed
    for name, v in extra.items():
        feats[:, cols.index(name)] = v
    if features == "layout_scaled":
        # kernels: each live op's own, plus every add (a dead output's zeros_like: 1)
        launches = same + mixed + (~node_live[-1]).to(torch.float64)
        for op in counted:
            for lay in LAYOUTS:
                k = cols.index(f"n_{op.value}@{lay}")
                launches += OP_LAUNCHES[op] * feats[:, k]
                feats[:, k] *= seed_time(op, costs, hw)
        add = add_scale(costs, hw)
        feats[:, cols.index("adds_same")] *= add
        feats[:, cols.index("adds_mixed")] *= add
        feats[:, cols.index("launches")] = launches
    return feats.numpy()


def raw_from_codes(
    features: str,
    ops: Sequence[OpType],
    num_nodes: int,
    codes: torch.Tensor,
    costs: Mapping[OpType, OpCost],
    hw: HWProfile,
) -> np.ndarray:
    """codes: Tensor[n, E] int64 canonical op codes on the full edge list of
    ``num_nodes`` (row-major (i, j), i < j; absent edges are ``zero``) -> raw
    features [n, F] float64 of set ``features`` over the op list ``ops``. ValueError
    when a cell uses an op outside ``ops`` (every set but ``"seed"``)."""
    codes = codes.to(torch.int64).cpu()
    table = torch.from_numpy(op_raw_table(features, ops, costs, hw))  # [8, F]
    if features == "seed":  # additive over ALL edges, dead or not
        return table[codes].sum(dim=1).numpy()
    counted = count_ops(ops)
    present = sorted({CANON[c] for c in torch.unique(codes).tolist()} - {OpType.ZERO})
    unknown = [op.value for op in present if op not in counted]
    if unknown:
        known = [op.value for op in ops]
        raise ValueError(f"ops {unknown} are not in the estimator's op list {known}")
    walk = cell_walk(num_nodes, codes)  # the one walk every set but "seed" reads
    if features in LAYOUT_SETS:
        return layout_features(features, ops, walk, codes, costs, hw)
    feats = (table[codes] * walk.edge_live.unsqueeze(-1)).sum(dim=1)  # [n, F]
    cols = feature_columns(features, ops)
    if "launches" in cols:
        live_nodes = torch.stack(walk.node_live[1:], dim=1).sum(dim=1).to(torch.float64)
        out_dead = (~walk.node_live[-1]).to(torch.float64) if num_nodes > 1 else 0.0
        feats[:, cols.index("launches")] += out_dead - live_nodes
    return feats.numpy()


def cells_to_codes(cells: Sequence[Cell]) -> dict[int, tuple[list[int], torch.Tensor]]:
    """Group cells by node count -> (positions, canonical codes [m, E])."""
    groups: dict[int, tuple[list[int], list[list[int]]]] = {}
    for pos, cell in enumerate(cells):
        cell.validate()
        nn_ = cell.num_nodes
        edge_pos = {(i, j): k for k, (i, j) in enumerate(edge_list(nn_))}
        row = [ZERO_CODE] * len(edge_pos)
        for e in cell.edges:
            row[edge_pos[(e.src, e.dst)]] = CANON.index(as_op(e.op))
        idx, rows = groups.setdefault(nn_, ([], []))
        idx.append(pos)
        rows.append(row)
    return {
        k: (idx, torch.as_tensor(rows, dtype=torch.int64).reshape(len(idx), -1))
        for k, (idx, rows) in groups.items()
    }


def space_codes(space: SearchSpace, x: torch.Tensor) -> torch.Tensor:
    """Canonical op codes [n, num_edges] of cells of ``space`` given as indices
    Tensor[n] (decoded by the native ``decode_cells``) or the space's own op codes
    Tensor[n, num_edges]."""
    if x.dim() == 1:
        codes = space.decode(x.to(torch.int64))
    elif x.dim() == 2:
        if x.shape[1] != space.num_edges:
            raise ValueError(
                f"codes must be [n, num_edges={space.num_edges}], got {tuple(x.shape)}"
            )
        codes = x.to(torch.int64)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= space.num_ops):
            raise ValueError(
                f"op codes must lie in [0, {space.num_ops}), got {codes.min()}..{codes.max()}"
            )
    else:
        raise ValueError(f"indices must be [n] or codes [n, E], got {tuple(x.shape)}")
    remap = torch.as_tensor([CANON.index(op) for op in space.ops], dtype=torch.int64)
    return remap[codes.cpu()]


def cell_features(
    features: str,
    ops: Sequence[OpType],
    costs: Mapping[OpType, OpCost],
    hw: HWProfile,
    cells: Sequence[Cell] | torch.Tensor,
    space: SearchSpace | None = None,
) -> np.ndarray:
    """Raw features [n, F] (``feature_columns(features, ops)`` order) of cells given as
    a list of Cells (any node counts), or with ``space`` as cell indices Tensor[n] or
    op codes Tensor[n, num_edges], at the per-op ``costs`` on ``hw``."""
    if isinstance(cells, torch.Tensor):
        if space is None:
            raise ValueError("cell indices or codes need the space they index")
        return raw_from_codes(features, ops, space.num_nodes, space_codes(space, cells), costs, hw)
    cells = list(cells)
    out = np.zeros((len(cells), len(feature_columns(features, ops))), dtype=np.float64)
    for num_nodes, (idx, codes) in cells_to_codes(cells).items():
        out[idx] = raw_from_codes(features, ops, num_nodes, codes, costs, hw)
    return out
