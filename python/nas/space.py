"""The cell search space: ops, edges, cells, and the bijection cell <-> index.

A cell is a DAG on ``num_nodes`` nodes; node 0 is the input, the last node the
output. A space offers every edge (i, j), i < j, in row-major order, and each edge
carries one op of the space's op list. Cell ``index`` is the mixed-radix number whose
digits are the op codes of the edges, LAST edge fastest (the seed's Enumerate order).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# The op types live in the leaf module nas.optypes; re-exported here (nas.space.OpType
# and friends stay public).
from .optypes import (
    _OPS_BY_NAME,
    OpType,
    all_ops,
    as_op,
    default_signal_ops,
    edge_list,
    parse_ops,
)

__all__ = [
    "Cell",
    "DiscretizedArch",
    "Edge",
    "OpType",
    "SearchSpace",
    "all_ops",
    "as_op",
    "default_signal_ops",
    "default_signal_search_space",
    "edge_list",
    "make_cell",
    "parse_ops",
]


@dataclass(frozen=True)
class Edge:
    """A directed edge src -> dst carrying op. Valid edges have 0 <= src < dst.

    ``op`` names are converted to OpType; an unknown name is kept as given so that
    ``Cell.validate()`` can report it (the seed let such edges through silently).
    """

    src: int
    dst: int
    op: OpType | str

    def __post_init__(self) -> None:
        if not isinstance(self.op, OpType) and self.op in _OPS_BY_NAME:
            object.__setattr__(self, "op", _OPS_BY_NAME[self.op])


@dataclass(frozen=True)
class Cell:
    """A cell: ``num_nodes`` nodes and its edges (stored as a tuple, so cells built
    from a list or a tuple compare and hash alike)."""

    num_nodes: int
    edges: tuple[Edge, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(self.edges))

    def is_valid(self) -> bool:
        """The seed's check: >= 2 nodes and every edge with 0 <= src < dst < num_nodes."""
        if self.num_nodes < 2:
            return False
        return all(0 <= e.src < e.dst < self.num_nodes for e in self.edges)

    def validate(self) -> None:
        """Raise ValueError naming the first problem: too few nodes, an edge out of
        range or backwards, a duplicate edge, or an unknown op."""
        if not _is_int(self.num_nodes):
            raise ValueError(f"invalid cell: num_nodes must be an integer, got {self.num_nodes!r}")
        if self.num_nodes < 2:
            raise ValueError(f"invalid cell: num_nodes is {self.num_nodes}, must be >= 2")
        seen: set[tuple[int, int]] = set()
        for i, e in enumerate(self.edges):
            if not (_is_int(e.src) and _is_int(e.dst)):
                raise ValueError(
                    f"invalid cell: edge {i} ({e.src!r}->{e.dst!r}) must have integer nodes"
                )
            if e.src < 0:
                raise ValueError(f"invalid cell: edge {i} ({e.src}->{e.dst}) has src < 0")
            if e.src >= e.dst:
                raise ValueError(
                    f"invalid cell: edge {i} ({e.src}->{e.dst}) has src >= dst (must go forward)"
                )
            if e.dst >= self.num_nodes:
                raise ValueError(
                    f"invalid cell: edge {i} ({e.src}->{e.dst}) has dst >= num_nodes "
                    f"({self.num_nodes})"
                )
            if (e.src, e.dst) in seen:
                raise ValueError(f"invalid cell: duplicate edge {e.src}->{e.dst} (edge {i})")
            seen.add((e.src, e.dst))
            if not isinstance(e.op, OpType):
                raise ValueError(
                    f"invalid cell: edge {i} ({e.src}->{e.dst}) has unknown op {e.op!r}"
                )

    def live_nodes(self) -> frozenset[int]:
        """The nodes on some path of non-zero edges from node 0 (the input) to the last
        node (the output); empty when no such path exists (the cell outputs zeros)."""
        nonzero = [(e.src, e.dst) for e in self.edges if e.op != OpType.ZERO]
        last = self.num_nodes - 1
        fwd = {0}
        for j in range(1, self.num_nodes):
            if any(a in fwd and b == j for a, b in nonzero):
                fwd.add(j)
        bwd = {last}
        for i in range(last - 1, -1, -1):
            if any(a == i and b in bwd for a, b in nonzero):
                bwd.add(i)
        return frozenset(fwd & bwd)

    def pruned(self) -> Cell:
        """This cell with every edge into or out of a dead node (see :meth:`live_nodes`)
        set to ``zero``: what a runtime actually computes, and what ``prune_dead``
        scores (``nas.enumerate``)."""
        live = self.live_nodes()
        return Cell(
            self.num_nodes,
            tuple(
                e if e.src in live and e.dst in live else Edge(e.src, e.dst, OpType.ZERO)
                for e in self.edges
            ),
        )

    @property
    def ops(self) -> tuple[OpType | str, ...]:
        """The op of each edge, in edge order."""
        return tuple(e.op for e in self.edges)

    def __str__(self) -> str:
        body = ", ".join(f"{e.src}->{e.dst}:{e.op}" for e in self.edges)
        return f"Cell({self.num_nodes} nodes: {body})"


def _is_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _check_int(name: str, value: object, minimum: int) -> int:
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# Beyond this a space has no use (64 nodes: 2016 edges, 8**2016 cells) and its edge
# list and cell count outgrow memory and Python's int printing (4300 digits).
MAX_SPACE_NODES = 64


class SearchSpace:
    """Every cell on ``num_nodes`` nodes whose edges (i, j), i < j, each carry one of
    ``ops``. ``num_cells() == len(ops) ** num_edges``, an exact int."""

    def __init__(self, num_nodes: int, ops: str | Sequence[OpType | str] | None = None) -> None:
        self.num_nodes = _check_int("num_nodes", num_nodes, 0)
        if self.num_nodes > MAX_SPACE_NODES:
            raise ValueError(f"num_nodes must be <= {MAX_SPACE_NODES}, got {self.num_nodes}")
        # a str is an op spec ("conv_3x3,zero", "all", "signal"), never a list of letters
        self.ops: list[OpType] = parse_ops(ops)
        if len(set(self.ops)) != len(self.ops):
            dup = next(op for op in self.ops if self.ops.count(op) > 1)
            raise ValueError(f"ops lists {dup.value!r} more than once")
        self.edges: list[tuple[int, int]] = edge_list(self.num_nodes)
        self._edge_pos = {e: k for k, e in enumerate(self.edges)}
        self._op_code = {op: k for k, op in enumerate(self.ops)}

    # -- size -------------------------------------------------------------
    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    def num_cells(self) -> int:
        """len(ops) ** num_edges, exact (never wraps: 8 nodes x 8 ops is 2**84)."""
        return self.num_ops**self.num_edges

    def __len__(self) -> int:
        return self.num_cells()

    def __repr__(self) -> str:
        ops = ", ".join(op.value for op in self.ops)
        return f"SearchSpace(num_nodes={self.num_nodes}, ops=[{ops}])"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SearchSpace)
            and other.num_nodes == self.num_nodes
            and other.ops == self.ops
        )

    def __hash__(self) -> int:
        return hash((self.num_nodes, tuple(self.ops)))

    def _require_ops(self, what: str) -> None:
        if not self.ops:
            raise ValueError(f"cannot {what}: the search space has an empty op list")

    # -- cell <-> index -----------------------------------------------------
    def cell_from_codes(self, codes: Sequence[int]) -> Cell:
        """The cell whose edge k carries ``ops[codes[k]]``."""
        if len(codes) != self.num_edges:
            raise ValueError(f"got {len(codes)} op codes, the space has {self.num_edges} edges")
        edges = []
        for (i, j), c in zip(self.edges, codes, strict=True):
            if not 0 <= int(c) < self.num_ops:
                raise ValueError(f"op code {c} out of range [0, {self.num_ops})")
            edges.append(Edge(i, j, self.ops[int(c)]))
        return Cell(self.num_nodes, tuple(edges))

    def cell(self, index: int) -> Cell:
        """The cell with this index in [0, num_cells())."""
        self._require_ops("decode a cell")
        index = _check_int("index", index, 0)
        n = self.num_cells()
        if index >= n:
            raise ValueError(f"index {index} is out of range [0, {n})")
        k = self.num_ops
        codes = [0] * self.num_edges
        for e in range(self.num_edges - 1, -1, -1):
            index, codes[e] = divmod(index, k)
        return self.cell_from_codes(codes)

    def codes(self, cell: Cell) -> list[int]:
        """The op code of each of the space's edges in ``cell``."""
        if cell.num_nodes != self.num_nodes:
            raise ValueError(f"cell has {cell.num_nodes} nodes, the space has {self.num_nodes}")
        codes: list[int | None] = [None] * self.num_edges
        for e in cell.edges:
            pos = self._edge_pos.get((e.src, e.dst))
            if pos is None:
                raise ValueError(f"edge {e.src}->{e.dst} is not an edge of this space")
            if codes[pos] is not None:
                raise ValueError(f"duplicate edge {e.src}->{e.dst}")
            code = self._op_code.get(e.op)  # type: ignore[arg-type]
            if code is None:
                raise ValueError(f"op {e.op!s} on edge {e.src}->{e.dst} is not in this space")
            codes[pos] = code
        missing = [self.edges[k] for k, c in enumerate(codes) if c is None]
        if missing:
            i, j = missing[0]
            raise ValueError(f"cell has no op on edge {i}->{j} (every edge needs one)")
        return codes  # type: ignore[return-value]

    def index(self, cell: Cell) -> int:
        """The index of ``cell`` (the inverse of :meth:`cell`), an exact int."""
        idx = 0
        for c in self.codes(cell):
            idx = idx * self.num_ops + c
        return idx

    def decode(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Batched op codes: indices Tensor[n] int64 -> Tensor[n, num_edges] int64
        (the native ``nas::decode_cells`` op; indices must fit in int64)."""
        from .ops import decode_cells

        self._require_ops("decode cells")
        if not isinstance(indices, torch.Tensor):
            indices = torch.as_tensor(list(indices), dtype=torch.int64)
        return decode_cells(indices, self.num_ops, self.num_edges)

    def cells(self, indices: torch.Tensor | Sequence[int]) -> list[Cell]:
        """Batched :meth:`cell`, decoded by the native op."""
        codes = self.decode(indices).cpu().tolist()
        return [self.cell_from_codes(row) for row in codes]

    # -- iteration and sampling ---------------------------------------------
    def enumerate(self, max_cells: int | None = None) -> Iterator[Cell]:
        """Lazily yield cells in index order (last edge fastest), at most ``max_cells``."""
        if max_cells is not None:
            max_cells = _check_int("max_cells", max_cells, 0)
        gen = itertools.product(range(self.num_ops), repeat=self.num_edges)
        for codes in itertools.islice(gen, max_cells):
            yield self.cell_from_codes(codes)

    def sample(self, rng: np.random.Generator | int | None = None) -> Cell:
        """One uniformly random cell: an independent uniform op per edge, in edge order.
        ``rng`` is a numpy Generator or an int seed."""
        self._require_ops("sample a cell")
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        codes = rng.integers(0, self.num_ops, size=self.num_edges)
        return self.cell_from_codes(codes.tolist())


@dataclass(frozen=True)
class DiscretizedArch:
    """A concrete architecture: the chosen cell and its total parameter count
    (what discretizing a supernet yields, and what a GGUF file stores)."""

    cell: Cell
    total_params: int


def default_signal_search_space() -> SearchSpace:
    """The default space of PatchTST-like signal models: 4 nodes, ops
    [avg_pool_3x3, max_pool_3x3, skip_connect, zero]."""
    return SearchSpace(4, default_signal_ops())


def make_cell(num_nodes: int, edges: Iterable[tuple[int, int, OpType | str]]) -> Cell:
    """Convenience: ``make_cell(3, [(0, 1, "conv_3x3"), ...])``."""
    return Cell(num_nodes, tuple(Edge(i, j, op) for i, j, op in edges))


def format_cell(cell: Cell) -> str:
    """The one textual form of a cell, used everywhere (``nas enumerate``, result.json,
    ``nas inspect``, ``nas train --cell``): its non-zero edges in order, such as
    ``0->1:conv_3x3,0->2:skip_connect`` (edges not listed carry zero); a cell whose
    edges are all zero is ``(none)``. :func:`parse_cell` reads it back."""
    return ",".join(f"{e.src}->{e.dst}:{e.op}" for e in cell.edges if e.op != OpType.ZERO) or (
        "(none)"
    )


def parse_cell(text: str, num_nodes: int | None = None) -> Cell:
    """A cell from its textual form (:func:`format_cell`): comma-separated
    ``SRC->DST:OP`` edges (spaces allowed); ``(none)`` or "" for no edge. The cell has
    ``num_nodes`` nodes (default: the largest DST + 1; the output is the last node) and
    holds the listed edges only. ValueError naming the bad part."""
    if not isinstance(text, str):
        raise ValueError(f"a cell must be text like '0->1:conv_3x3,1->2:zero', got {text!r}")
    body = text.strip()
    if body.startswith("Cell(") and body.endswith(")") and ":" in body:
        body = body[body.index(":") + 1 : -1]  # str(Cell): "Cell(3 nodes: 0->1:op, ...)"
    edges: list[Edge] = []
    if body not in ("", "(none)"):
        for part in body.split(","):
            item = part.strip()
            try:
                arc, op = item.split(":")
                src, dst = (int(v) for v in arc.split("->"))
            except ValueError:
                raise ValueError(
                    f"cell edge {item!r} is not SRC->DST:OP (e.g. 0->1:conv_3x3)"
                ) from None
            edges.append(Edge(src, dst, as_op(op.strip())))
    if num_nodes is None:
        num_nodes = max((e.dst for e in edges), default=1) + 1
    cell = Cell(num_nodes, tuple(edges))
    cell.validate()
    return cell
