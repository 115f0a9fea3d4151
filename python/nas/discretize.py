"""Discretize: from continuous DARTS architecture weights (alpha) to a concrete cell.

``alpha`` holds one logit per (edge, op): a flat array of length num_edges * num_ops,
edge-major (``alpha[e * K + k]`` is op k on the space's edge e), or a [E, K] array.
Each edge's logits define a categorical distribution w_e = softmax(alpha_e).

Two rules pick the cell:

* ``rule="argmax"`` (the seed): every edge keeps its argmax op (ties go to the lowest
  op index); every edge stays in the cell, ``zero`` included. This is the cell that
  maximises ``sum_e log w_e(op_e)`` over all edges.
* ``rule="darts"`` (DARTS' genotype rule, Liu et al. 2019): ``zero`` is never chosen;
  each node j keeps its ``min(2, j)`` incoming edges with the strongest non-zero
  weight ``max_{k != zero} w_e(k)`` (ties to the lower edge index), each with its
  argmax non-zero op. The other edges carry ``zero`` when the space has it (so the
  cell is still a cell of the space) and are left out of the cell otherwise. This is
  the cell that maximises ``sum over kept edges of log w_e(op_e)`` among cells with
  exactly ``min(2, j)`` non-zero incoming edges per node.

Budget: ``total_params`` is the sum of the ops' parameter counts (``params``, default
``nas.default_op_params()``; pass ``nas.op_params_1d(hidden)`` for the signal ops).
With ``max_params > 0`` a cell above the budget is an error, or, with
``fit_budget=True``, the rule's objective is maximised exactly over the cells that fit
(a knapsack over the groups of the rule, edges or nodes, solved by dynamic programming
on Pareto fronts of (params, log-probability)). ``max_params == 0`` means no budget.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .costs import default_op_params
from .space import Cell, DiscretizedArch, Edge, OpType, SearchSpace

RULES: tuple[str, ...] = ("argmax", "darts")


def _as_alpha(alpha: torch.Tensor | np.ndarray | Sequence[float], space: SearchSpace) -> np.ndarray:
    """alpha as a float64 [E, K] array, validated."""
    if isinstance(alpha, torch.Tensor):
        arr = alpha.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(alpha, dtype=np.float64)
    E, K = space.num_edges, space.num_ops
    if arr.ndim == 2:
        if arr.shape != (E, K):
            raise ValueError(
                f"alpha shape {tuple(arr.shape)} does not match "
                f"[num_edges({E}), num_ops({K})] = [{E}, {K}]"
            )
    elif arr.ndim == 1:
        if arr.size != E * K:
            raise ValueError(
                f"alpha length {arr.size} does not match num_edges({E}) * num_ops({K}) = {E * K}"
            )
        arr = arr.reshape(E, K)
    else:
        raise ValueError(f"alpha must be [E * K] or [E, K], got shape {tuple(arr.shape)}")
    if E == 0:
        return arr
    if K == 0:
        raise ValueError("cannot discretize: the search space has an empty op list")
    bad = np.argwhere(np.isnan(arr))
    if bad.size:
        e, k = (int(v) for v in bad[0])
        raise ValueError(
            f"alpha contains NaN at index {e * K + k} (edge {space.edges[e][0]}->"
            f"{space.edges[e][1]}, op {space.ops[k].value})"
        )
    bad = np.argwhere(np.isposinf(arr))
    if bad.size:
        e, k = (int(v) for v in bad[0])
        raise ValueError(
            f"alpha contains +inf at index {e * K + k} (edge {space.edges[e][0]}->"
            f"{space.edges[e][1]}, op {space.ops[k].value}); logits must be finite or -inf"
        )
    dead = np.flatnonzero(np.isneginf(arr).all(axis=1))
    if dead.size:
        i, j = space.edges[int(dead[0])]
        raise ValueError(f"alpha of edge {i}->{j} is -inf for every op (no op is possible)")
    return arr


def _log_softmax(arr: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of a [E, K] float64 array (-inf logits stay -inf)."""
    m = arr.max(axis=1, keepdims=True)
    z = arr - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _param_table(params: Mapping[OpType, int] | None, space: SearchSpace) -> np.ndarray:
    table = params if params is not None else default_op_params()
    out = []
    for op in space.ops:
        if op not in table:
            raise ValueError(f"the params table has no entry for op {op.value!r}")
        v = table[op]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"params of op {op.value!r} must be an integer >= 0, got {v!r}")
        out.append(int(v))
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class _Option:
    """One choice for a group (an edge, or the incoming edges of a node): its
    parameter count, its log-probability and the op code of each edge it decides."""

    params: int
    score: float
    codes: tuple[tuple[int, int], ...]  # (edge, op code); code -1 = edge left out


def _pareto(items: list[tuple[int, float, object]]) -> list[tuple[int, float, object]]:
    """The (params, score, payload) items that no other beats with fewer-or-equal
    params and a strictly higher score, sorted by params (the first wins exact ties)."""
    best: dict[int, tuple[int, float, object]] = {}
    for it in items:
        cur = best.get(it[0])
        if cur is None or it[1] > cur[1]:
            best[it[0]] = it
    front: list[tuple[int, float, object]] = []
    for p in sorted(best):
        if not front or best[p][1] > front[-1][1]:
            front.append(best[p])
    return front


def _edge_options(
    logw: np.ndarray, ptab: np.ndarray, allowed: Sequence[int], e: int
) -> list[_Option]:
    return [
        _Option(int(ptab[k]), float(logw[e, k]), ((e, k),))
        for k in allowed
        if logw[e, k] > -math.inf
    ]


def _prune(options: list[_Option]) -> list[_Option]:
    return [it[2] for it in _pareto([(o.params, o.score, o) for o in options])]  # type: ignore[misc]


def _zero_code(space: SearchSpace) -> int | None:
    return space.ops.index(OpType.ZERO) if OpType.ZERO in space.ops else None


def _groups(
    rule: str, logw: np.ndarray, ptab: np.ndarray, space: SearchSpace
) -> list[list[_Option]]:
    """The rule's independent groups, each the (Pareto-pruned) options of which one
    must be chosen: an edge's ops (argmax), or a node's kept edges and their ops
    (darts). Summed over groups, option scores are the rule's objective."""
    K = space.num_ops
    if rule == "argmax":
        return [_prune(_edge_options(logw, ptab, range(K), e)) for e in range(space.num_edges)]
    zero = _zero_code(space)
    nonzero = [k for k in range(K) if k != zero]
    dropped_params = 0 if zero is None else int(ptab[zero])
    dropped_code = -1 if zero is None else zero
    groups = []
    for j in range(1, space.num_nodes):
        incoming = [e for e, (_, dst) in enumerate(space.edges) if dst == j]
        per_edge = {e: _prune(_edge_options(logw, ptab, nonzero, e)) for e in incoming}
        options = []
        for kept in itertools.combinations(incoming, min(2, len(incoming))):
            dropped = tuple((e, dropped_code) for e in incoming if e not in kept)
            for combo in itertools.product(*(per_edge[e] for e in kept)):
                options.append(
                    _Option(
                        dropped_params * len(dropped) + sum(o.params for o in combo),
                        sum(o.score for o in combo),
                        dropped + tuple(c for o in combo for c in o.codes),
                    )
                )
        groups.append(_prune(options))
    return groups


def _rule_codes(rule: str, logw: np.ndarray, space: SearchSpace) -> list[int]:
    """The rule's cell without a budget: an op code per edge (-1: left out)."""
    if rule == "argmax":
        return [int(k) for k in np.argmax(logw, axis=1)]  # first maximum: lowest index
    zero = _zero_code(space)
    nonzero = [k for k in range(space.num_ops) if k != zero]
    masked = logw[:, nonzero]
    best_op = [nonzero[int(k)] for k in np.argmax(masked, axis=1)]
    strength = masked.max(axis=1)
    codes = [-1 if zero is None else zero] * space.num_edges
    for j in range(1, space.num_nodes):
        incoming = [e for e, (_, dst) in enumerate(space.edges) if dst == j]
        # stable sort: equal strengths keep the lower edge index first
        ranked = sorted(incoming, key=lambda e: -strength[e])
        for e in ranked[:2]:
            if strength[e] == -math.inf:
                i, _ = space.edges[e]
                raise ValueError(f"rule='darts': edge {i}->{j} has no possible non-zero op")
            codes[e] = best_op[e]
    return codes


def _best_within(groups: list[list[_Option]], budget: int) -> list[_Option] | None:
    """One option per group maximising the summed score subject to summed params <=
    budget, exactly; None when nothing fits. Dynamic programming over groups whose
    state set is the Pareto front of (params, score): a state another beats with
    fewer params and a higher score can never be part of the optimum."""
    states: list[tuple[int, float, object]] = [(0, 0.0, ())]
    for options in groups:
        merged = [
            (p + o.params, s + o.score, (*chain, o))  # type: ignore[misc]
            for p, s, chain in states
            for o in options
            if p + o.params <= budget
        ]
        if not merged:
            return None
        states = _pareto(merged)
    return list(max(states, key=lambda t: t[1])[2])  # type: ignore[call-overload]


def _cell(codes: Sequence[int], space: SearchSpace) -> Cell:
    edges = [
        Edge(i, j, space.ops[c]) for (i, j), c in zip(space.edges, codes, strict=True) if c >= 0
    ]
    return Cell(space.num_nodes, tuple(edges))


def discretize(
    alpha: torch.Tensor | np.ndarray | Sequence[float],
    space: SearchSpace,
    max_params: int = 0,
    *,
    rule: str = "argmax",
    fit_budget: bool = False,
    params: Mapping[OpType, int] | None = None,
) -> DiscretizedArch:
    """The concrete cell that ``alpha`` selects, with its parameter count.

    alpha: Tensor[E * K] (edge-major, ``alpha[e * K + k]``) or Tensor[E, K] logits,
    E = space.num_edges, K = space.num_ops (a tensor, ndarray or sequence).
    rule: "argmax" (every edge keeps its argmax op, zero included) or "darts" (no
    zero; the top-2 incoming edges per node); see the module docstring.
    max_params: the budget on ``total_params`` (0: none; equal is allowed).
    fit_budget: instead of raising when the rule's cell exceeds max_params, return
    the cell maximising the rule's summed log-softmax weight among those that fit.
    params: parameter count per op (default ``default_op_params()``).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)):
        raise ValueError(f"max_params must be an integer, got {max_params!r}")
    if max_params < 0:
        raise ValueError(f"max_params must be >= 0 (0: no budget), got {max_params}")
    arr = _as_alpha(alpha, space)
    ptab = _param_table(params, space)
    if space.num_edges == 0:
        return DiscretizedArch(Cell(space.num_nodes, ()), 0)
    logw = _log_softmax(arr)
    if rule == "darts" and all(op == OpType.ZERO for op in space.ops):
        raise ValueError("rule='darts' needs an op other than zero; the space has only zero")
    codes = _rule_codes(rule, logw, space)
    total = int(sum(int(ptab[c]) for c in codes if c >= 0))
    if max_params > 0 and total > max_params:
        if not fit_budget:
            raise ValueError(
                f"discretized architecture has {total} params, exceeds max_params {max_params}"
            )
        groups = _groups(rule, logw, ptab, space)
        choice = _best_within(groups, int(max_params))
        if choice is None:
            smallest = sum(min(o.params for o in options) for options in groups)
            raise ValueError(
                f"no {rule} cell fits max_params {max_params}: the smallest has {smallest} params"
            )
        fitted = dict(c for o in choice for c in o.codes)
        codes = [fitted[e] for e in range(space.num_edges)]
        total = int(sum(int(ptab[c]) for c in codes if c >= 0))
    return DiscretizedArch(_cell(codes, space), total)


def cell_log_prob(
    alpha: torch.Tensor | np.ndarray | Sequence[float],
    space: SearchSpace,
    cell: Cell,
    rule: str = "argmax",
) -> float:
    """The objective the rule maximises, for ``cell``: the sum over the cell's edges of
    ``log softmax(alpha_e)[op_e]``; with rule="darts" ``zero`` edges (dropped edges)
    are not counted. alpha: Tensor[E * K] or Tensor[E, K]."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    logw = _log_softmax(_as_alpha(alpha, space))
    pos = {e: n for n, e in enumerate(space.edges)}
    code = {op: k for k, op in enumerate(space.ops)}
    total = 0.0
    for e in cell.edges:
        n = pos.get((e.src, e.dst))
        if n is None:
            raise ValueError(f"edge {e.src}->{e.dst} is not an edge of this space")
        if e.op not in code:
            raise ValueError(f"op {e.op!s} on edge {e.src}->{e.dst} is not in this space")
        if rule == "darts" and e.op == OpType.ZERO:
            continue
        total += float(logw[n, code[e.op]])
    return total
