"""nas.enumerate and the nas::enumerate_* ops against their references.

Three layers: the plain-Python brute force over space.enumerate() (the spec) agrees
with the vectorised numpy reference bit for bit; the kernels agree with the numpy
reference bit for bit on many random spaces and tables (fractional and tie-heavy
integer ones, with and without prune_dead and constraints); branch and bound agrees
with the exhaustive kernel.
"""

import json
import math
import time

import numpy as np
import pytest
import torch

import nas
from nas.cli import main
from nas.enumerate import (
    count_cells,
    pareto_front,
    score_cells,
    score_histogram,
    search_top_k,
    top_k_cells,
)
from nas.latency import latency_coeffs
from nas.ops import _reference

from .conftest import devices

INF = math.inf


def _space(rng: np.random.Generator, num_nodes: int, num_ops: int, zero: bool) -> nas.SearchSpace:
    others = [op for op in nas.all_ops() if op != nas.OpType.ZERO]
    ops = list(rng.choice(others, size=num_ops - int(zero), replace=False))
    if zero:
        ops.insert(int(rng.integers(0, len(ops) + 1)), nas.OpType.ZERO)
    return nas.SearchSpace(num_nodes, ops)


def _table(rng: np.random.Generator, num_ops: int, nf: int, kind: str) -> np.ndarray:
    if kind == "ints":  # small integers: many exact ties
        return rng.integers(0, 4, size=(num_ops, nf)).astype(np.float64)
    return rng.normal(size=(num_ops, nf)) * 10.0 ** rng.integers(-3, 4, size=(1, nf))


def _bounds(constraints, nf):
    from nas.enumerate import _bounds

    return _bounds(constraints, nf)


# Random small spaces: (num_nodes, num_ops), each at most a few million cells, several
# with outer edges before the inner block (num_ops ** num_edges > 4096).
SPACES = [(2, 8), (3, 8), (4, 2), (4, 5), (4, 8), (5, 2), (5, 3), (5, 4), (6, 2), (4, 7), (4, 6)]


# ------------------------------------------------------------------ spec layer
@pytest.mark.parametrize("num_nodes,num_ops,zero", [(6, 2, True), (4, 5, True), (4, 4, False)])
def test_numpy_reference_equals_brute_force(num_nodes, num_ops, zero):
    rng = np.random.default_rng(num_nodes * 10 + num_ops)
    space = _space(rng, num_nodes, num_ops, zero)
    table = _table(rng, num_ops, 3, "normal")
    coeffs = rng.normal(size=3)
    idx = np.arange(space.num_cells(), dtype=np.int64)
    zero_op = space.ops.index(nas.OpType.ZERO) if zero else -1
    for prune in (False, True):
        brute = _reference.enumerate_brute_force(space, table, coeffs, 0.25, prune)
        f, s, canon = _reference.enumerate_eval(
            table, coeffs[None, :], 0.25, num_nodes, zero_op, prune, idx
        )
        assert np.array_equal(f, np.array([b[0] for b in brute]))
        assert np.array_equal(s[:, 0], np.array([b[1] for b in brute]))
        assert np.array_equal(canon, np.array([b[2] for b in brute]))


def test_prune_dead_semantics():
    # 4 nodes, ops [conv_3x3, zero]: edges (0,1) (0,2) (0,3) (1,2) (1,3) (2,3).
    space = nas.SearchSpace(4, ["conv_3x3", "zero"])
    table = np.array([[1.0], [0.0]])
    # Only 0->1 and 1->3 non-zero besides 0->2 (node 2 has no path to 3: dead).
    codes = [0, 0, 1, 1, 0, 1]
    i = space.index(space.cell_from_codes(codes))
    f, _ = score_cells(space, table, start=i, count=1, prune_dead=True)
    assert f.item() == 2.0  # 0->2 costs nothing: node 2 is dead
    f, _ = score_cells(space, table, start=i, count=1)
    assert f.item() == 3.0
    # No path from 0 to 3 at all: every node is dead and the cell costs nothing.
    i = space.index(space.cell_from_codes([0, 0, 1, 0, 1, 1]))
    f, _ = score_cells(space, table, start=i, count=1, prune_dead=True)
    assert f.item() == 0.0
    # The distinct pruned cells of a tiny space, counted by hand: canonical cells are
    # those whose dead edges all carry zero.
    brute = _reference.enumerate_brute_force(space, table, np.ones(1), 0.0, True)
    c = count_cells(space, table, prune_dead=True)
    assert c.count == 64 and c.distinct == sum(b[2] for b in brute) < 64
    assert count_cells(space, table).distinct == 64


# ------------------------------------------------------------------ kernels vs reference
def _case(seed: int):
    rng = np.random.default_rng(seed)
    num_nodes, num_ops = SPACES[seed % len(SPACES)]
    zero = bool(rng.integers(0, 2)) or num_ops == 8
    space = _space(rng, num_nodes, num_ops, zero)
    nf = int(rng.integers(1, 4))
    table = _table(rng, num_ops, nf, "ints" if seed % 2 else "normal")
    coeffs = rng.normal(size=nf) if seed % 3 else np.round(rng.normal(size=nf))
    return rng, space, table, coeffs


def _random_constraints(rng, space, table, coeffs):
    f, _ = score_cells(space, table, count=min(space.num_cells(), 5000))
    col = int(rng.integers(0, table.shape[1]))
    q = np.quantile(f[:, col].numpy(), [0.2, 0.7])
    kind = int(rng.integers(0, 3))
    return {col: (None, float(q[1])) if kind == 0 else (float(q[0]), None) if kind == 1 else
            (float(q[0]), float(q[1]))}  # fmt: skip


def _ref_args(space, table, coeffs, constraints):
    t = torch.as_tensor(table, dtype=torch.float64)
    c = torch.as_tensor(coeffs, dtype=torch.float64)
    low, high = _bounds(constraints, table.shape[1])
    zero = space.ops.index(nas.OpType.ZERO) if nas.OpType.ZERO in space.ops else -1
    return t, c, low, high, space.num_nodes, zero


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("seed", range(22))
def test_top_k_matches_reference(device, seed):
    rng, space, table, coeffs = _case(seed)
    n = space.num_cells()
    cons = _random_constraints(rng, space, table, coeffs) if seed % 4 else None
    prune = bool(seed % 3 == 1)
    largest = bool(seed % 5 == 2)
    k = int(rng.choice([1, 3, 10, 57]))
    start = int(rng.integers(0, n // 3 + 1)) if seed % 2 else 0
    count = n - start - (int(rng.integers(0, n - start)) if seed % 3 == 0 else 0)
    got = top_k_cells(space, table, coeffs, k, cons, largest=largest, bias=0.5, start=start,
                      count=count, prune_dead=prune, device=device)  # fmt: skip
    t, c, low, high, nodes, zero = _ref_args(space, table, coeffs, cons)
    ref = _reference.enumerate_top_k(t, c, 0.5, low, high, nodes, zero, prune, start, count, k,
                                     largest)  # fmt: skip
    assert torch.equal(got.indices.cpu(), ref[0])
    assert torch.equal(got.scores.cpu(), ref[1])  # bitwise: same arithmetic
    assert torch.equal(got.features.cpu(), ref[2])
    assert len(got.indices) == min(k, len(ref[0]))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("seed", range(12))
def test_score_count_histogram_pareto_match_reference(device, seed):
    rng, space, table, coeffs = _case(100 + seed)
    n = space.num_cells()
    prune = bool(seed % 2)
    cons = _random_constraints(rng, space, table, coeffs) if seed % 3 else None
    t, c, low, high, nodes, zero = _ref_args(space, table, coeffs, cons)
    # score_cells on a slice that starts and ends mid-block
    start = int(rng.integers(0, n))
    count = min(n - start, 20_000)
    f, s = score_cells(space, table, coeffs, bias=-1.5, start=start, count=count,
                       prune_dead=prune, device=device)  # fmt: skip
    rf, rs = _reference.enumerate_score_cells(t, c, -1.5, nodes, zero, prune, start, count)
    assert torch.equal(f.cpu(), rf) and torch.equal(s.cpu(), rs)
    # count + histogram over the whole space
    got = count_cells(space, table, cons, prune_dead=prune, device=device)
    h, tot = _reference.enumerate_count(t, c, 0.0, low, high, nodes, zero, prune, 0, n, 0, 0, 1)
    assert (got.count, got.distinct) == tuple(tot.tolist())
    hist = score_histogram(space, table, coeffs, 7, None, cons, prune_dead=prune, device=device)
    lo, hi = float(hist.edges[0]), float(hist.edges[-1])
    h, tot = _reference.enumerate_count(t, c, 0.0, low, high, nodes, zero, prune, 0, n, 7, lo, hi)
    assert torch.equal(hist.counts, h[1:-1]) and hist.below == h[0] == 0 and hist.above == h[-1]
    assert int(hist.counts.sum()) == got.count
    # pareto front of (score, feature 0)
    pf = pareto_front(space, table, [coeffs, 0], cons, prune_dead=prune, device=device)
    obj = torch.stack([c, torch.eye(len(coeffs), dtype=torch.float64)[0]])
    ri, rv, rn = _reference.enumerate_pareto(t, obj, low, high, nodes, zero, prune, 0, n)
    assert torch.equal(pf.indices.cpu(), ri)
    assert torch.equal(pf.values.cpu(), rv)
    assert torch.equal(pf.counts.cpu(), rn)


def test_pareto_front_is_non_dominated_and_complete():
    rng = np.random.default_rng(7)
    space = _space(rng, 4, 5, True)
    table = _table(rng, 5, 2, "ints")
    pf = pareto_front(space, table, [0, 1])
    f, _ = score_cells(space, table)
    pts = f.numpy()
    vals = pf.values.numpy()
    for a, b in vals:  # nothing dominates a front point
        assert not (
            ((pts[:, 0] <= a) & (pts[:, 1] <= b) & ((pts[:, 0] < a) | (pts[:, 1] < b))).any()
        )
    for (a, b), i, n in zip(vals, pf.indices.tolist(), pf.counts.tolist(), strict=True):
        same = np.nonzero((pts[:, 0] == a) & (pts[:, 1] == b))[0]
        assert same[0] == i and len(same) == n
    # every cell is dominated by or equal to some front point
    dom = ((vals[None, :, 0] <= pts[:, None, 0]) & (vals[None, :, 1] <= pts[:, None, 1])).any(1)
    assert dom.all()


def test_thread_count_does_not_change_results():
    rng, space, table, coeffs = _case(3)
    threads = torch.get_num_threads()
    a = top_k_cells(space, table, coeffs, 25, prune_dead=True)
    b = pareto_front(space, table, [coeffs, 0])
    try:
        torch.set_num_threads(1)
        a1 = top_k_cells(space, table, coeffs, 25, prune_dead=True)
        b1 = pareto_front(space, table, [coeffs, 0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a.indices, a1.indices) and torch.equal(a.scores, a1.scores)
    assert torch.equal(b.indices, b1.indices) and torch.equal(b.counts, b1.counts)


def test_chunked_scan_with_progress_matches_one_call(monkeypatch):
    import nas.enumerate as en

    rng, space, table, coeffs = _case(9)
    one = top_k_cells(space, table, coeffs, 40)
    pf = pareto_front(space, table, [coeffs, 0])
    cnt = count_cells(space, table, {0: (None, float(np.median(table[:, 0])) * 3)})
    monkeypatch.setattr(en, "SCAN_CHUNK", 777)
    many = top_k_cells(space, table, coeffs, 40, progress=True)
    assert torch.equal(one.indices, many.indices) and torch.equal(one.scores, many.scores)
    assert torch.equal(one.features, many.features)
    pf2 = pareto_front(space, table, [coeffs, 0], progress=True)
    assert torch.equal(pf.indices, pf2.indices) and torch.equal(pf.counts, pf2.counts)
    cnt2 = count_cells(space, table, {0: (None, float(np.median(table[:, 0])) * 3)})
    assert cnt == cnt2


# ------------------------------------------------------------------ branch and bound
@pytest.mark.parametrize("seed", range(30))
def test_search_equals_exhaustive(seed):
    rng, space, table, coeffs = _case(200 + seed)
    cons = _random_constraints(rng, space, table, coeffs) if seed % 3 else None
    if seed % 4 == 3:  # a monotone budget on every feature
        cons = {f: (None, float(np.quantile(table[:, f], 0.6)) * space.num_edges / 2)
                for f in range(table.shape[1])}  # fmt: skip
    largest = bool(seed % 5 == 1)
    k = int(rng.choice([1, 5, 33]))
    ex = top_k_cells(space, table, coeffs, k, cons, largest=largest, bias=2.0)
    bb = search_top_k(space, table, coeffs, k, cons, largest=largest, bias=2.0)
    assert torch.equal(ex.indices, bb.indices)
    assert torch.equal(ex.scores, bb.scores)
    assert torch.equal(ex.features, bb.features)


def test_search_full_5_node_space_and_huge_spaces():
    space = nas.SearchSpace(5)
    table = nas.op_feature_table(space.ops)
    coeffs, _ = latency_coeffs(nas.hw_profile("dgx_spark"))
    cons = {2: (None, 50_000)}
    ex = top_k_cells(space, table, coeffs, 10, cons)
    bb = search_top_k(space, table, coeffs, 10, cons)
    assert torch.equal(ex.indices, bb.indices) and torch.equal(ex.scores, bb.scores)
    big = top_k_cells(space, table, coeffs, 10, cons, largest=True)
    bbig = search_top_k(space, table, coeffs, 10, cons, largest=True)
    assert torch.equal(big.indices, bbig.indices)
    # 8 nodes: 2**84 cells, indices past int64 come back as Python ints. The fastest
    # cells with 36,864 to 50,000 parameters (the Lagrangian bound prunes by budget).
    s8 = nas.SearchSpace(8)
    t8 = nas.op_feature_table(s8.ops)
    r = search_top_k(s8, t8, coeffs, 5, {2: (36_864, 50_000)})
    assert isinstance(r.indices, list) and len(r.indices) == 5
    for i, sc, ft in zip(r.indices, r.scores.tolist(), r.features.tolist(), strict=True):
        cell = s8.cell(i)
        assert 36_864 <= nas.cell_params(cell) == ft[2] <= 50_000
        cost = nas.cell_cost(cell)
        assert ft[:2] == [cost.flops, cost.mem_bytes]  # integer-valued: exact sums
        assert sc == pytest.approx(coeffs[0] * cost.flops + coeffs[1] * cost.mem_bytes)
    # the best: one conv_3x3 and zero elsewhere, on the highest-index edges first (ties)
    best = s8.cell(r.indices[0])
    assert [str(op) for op in best.ops].count("zero") == 27
    assert r.scores.tolist() == sorted(r.scores.tolist())
    assert r.indices == sorted(r.indices)  # exact ties: lowest indices first
    # A node budget too small for the query stops it instead of hanging.
    with pytest.raises(RuntimeError, match="max_nodes"):
        search_top_k(s8, t8, coeffs, 5, cons, largest=True, max_nodes=100)


@pytest.mark.parametrize("seed", range(24))
def test_search_forced_ties_equals_exhaustive(seed):
    # Integer tables (exact sums: the search over op classes) with rows repeated at
    # scattered positions, so that exact ties abound: every cell of the top-k, its order
    # and its tie-break by lower index must match the exhaustive scan.
    rng = np.random.default_rng(700 + seed)
    num_nodes, num_ops = [(4, 8), (5, 4), (4, 6), (5, 3), (3, 8), (6, 2)][seed % 6]
    space = _space(rng, num_nodes, num_ops, bool(seed % 2) or num_ops == 8)
    nf = int(rng.integers(1, 4))
    distinct = rng.integers(-3, 6, size=(max(1, num_ops // 2), nf)).astype(np.float64)
    table = distinct[rng.integers(0, len(distinct), size=num_ops)]
    coeffs = rng.normal(size=nf) if seed % 3 else np.round(rng.normal(size=nf))
    cons = None
    if seed % 4:
        f, _ = score_cells(space, table, count=min(space.num_cells(), 5000))
        col = int(rng.integers(0, nf))
        q = np.quantile(f[:, col].numpy(), [0.2, 0.7])
        cons = [{col: (None, float(q[1]))}, {col: (float(q[0]), None)},
                {col: (float(q[0]), float(q[1]) + 0.5)}][seed % 4 - 1]  # fmt: skip
    for largest in (False, True):
        for k in (1, 7, 100):
            ex = top_k_cells(space, table, coeffs, k, cons, largest=largest, bias=0.25)
            bb = search_top_k(space, table, coeffs, k, cons, largest=largest, bias=0.25)
            assert torch.equal(ex.indices, bb.indices), (largest, k)
            assert torch.equal(ex.scores, bb.scores)
            assert torch.equal(ex.features, bb.features)


@pytest.mark.parametrize("largest", [False, True])
def test_search_budget_queries_finish_exactly(largest):
    # The slowest (and fastest) cells under a parameter budget: avg_pool and max_pool
    # have identical cost rows and integer features make permutations tie exactly, so
    # the best score is shared by astronomically many cells. At 5 nodes the scan
    # checks the answer; at 7 and 8 nodes the search must finish well inside its limit.
    coeffs, bias = latency_coeffs(nas.hw_profile("dgx_spark"))
    cons = {2: (None, 50_000)}
    for nodes in (4, 5):
        space = nas.SearchSpace(nodes)
        table = nas.op_feature_table(space.ops)
        ex = top_k_cells(space, table, coeffs, 10, cons, largest=largest, bias=bias)
        bb = search_top_k(space, table, coeffs, 10, cons, largest=largest, bias=bias)
        assert torch.equal(ex.indices, bb.indices) and torch.equal(ex.scores, bb.scores)
    for nodes in (7, 8):
        space = nas.SearchSpace(nodes)
        table = nas.op_feature_table(space.ops)
        r = search_top_k(space, table, coeffs, 10, cons, largest=largest, bias=bias,
                         time_limit=20)  # fmt: skip
        assert len(r.indices) == 10
        # The best score, independently: a knapsack over the edges by parameter count.
        best = {0.0: 0.0}
        for _ in range(space.num_edges):
            nxt: dict[float, float] = {}
            for p, v in best.items():
                for row in table:
                    q, w = p + row[2], v + float(np.dot(coeffs, row))
                    if q <= 50_000 and (q not in nxt or (w > nxt[q]) == largest and w != nxt[q]):
                        nxt[q] = w
            best = nxt
        opt = bias + (max(best.values()) if largest else min(best.values()))
        assert r.scores[0].item() == pytest.approx(opt, rel=1e-12, abs=1e-18)
        idx = [int(i) for i in (r.indices.tolist() if hasattr(r.indices, "tolist") else r.indices)]
        sc = r.scores.tolist()
        assert sc == sorted(sc, reverse=largest)
        for a in range(9):  # within one score, lower indices first
            assert sc[a] != sc[a + 1] or idx[a] < idx[a + 1]
        for i, s, ft in zip(idx, sc, r.features.tolist(), strict=True):
            cell = space.cell(i)
            assert nas.cell_params(cell) == ft[2] <= 50_000
            cost = nas.cell_cost(cell)
            assert ft[:2] == [cost.flops, cost.mem_bytes]
            assert s == pytest.approx(bias + coeffs[0] * cost.flops + coeffs[1] * cost.mem_bytes)


# ------------------------------------------------------------------ bad input
def test_bad_input():
    space = nas.SearchSpace(4)
    table = nas.op_feature_table(space.ops)
    c = [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="op_features has 7 rows, the space has 8 ops"):
        top_k_cells(space, table[:7], c, 3)
    with pytest.raises(ValueError, match="coeffs must have 3 entries"):
        top_k_cells(space, table, [1.0, 2.0], 3)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        top_k_cells(space, table, c, 0)
    with pytest.raises(ValueError, match=r"range \[262140, 262150\) is past num_cells"):
        top_k_cells(space, table, c, 3, start=262140, count=10)
    with pytest.raises(ValueError, match="start must be a non-negative"):
        score_cells(space, table, c, start=-1, count=1)
    bad = table.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="op_features must be finite"):
        count_cells(space, bad)
    with pytest.raises(ValueError, match="coeffs must be finite"):
        top_k_cells(space, table, [np.nan, 0, 0], 3)
    with pytest.raises(ValueError, match="empty op list"):
        count_cells(nas.SearchSpace(4, []), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"constraints key 3 is not a feature column"):
        count_cells(space, table, {3: (None, 1)})
    with pytest.raises(ValueError, match=r"constraints\[2\] is empty"):
        count_cells(space, table, {2: (5, 1)})
    with pytest.raises(ValueError, match=r"constraints\[0\] must be a \(low, high\) pair"):
        count_cells(space, table, {0: 5})
    with pytest.raises(ValueError, match="objectives must name exactly 2"):
        pareto_front(space, table, [0])
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        score_histogram(space, table, c, 0)
    with pytest.raises(ValueError, match="cannot scan"):
        count_cells(nas.SearchSpace(8), nas.op_feature_table(nas.all_ops()))
    with pytest.raises(ValueError, match="num_nodes"):
        count_cells(nas.SearchSpace(1), table)


@pytest.mark.parametrize(
    "op", [torch.ops.nas.enumerate_top_k, _reference.enumerate_top_k] if nas.has_native() else []
)
def test_bad_input_native_and_reference(op):
    t = torch.ones(4, 2, dtype=torch.float64)
    c = torch.ones(2, dtype=torch.float64)
    lo = torch.full((2,), -INF, dtype=torch.float64)
    hi = torch.full((2,), INF, dtype=torch.float64)
    ok = (t, c, 0.0, lo, hi, 4, -1, False, 0, 4096, 3, False)

    def call(**kw):
        names = ["t", "c", "bias", "lo", "hi", "n", "z", "p", "start", "count", "k", "largest"]
        args = dict(zip(names, ok, strict=True)) | kw
        return op(*args.values())

    assert len(call()[0]) == 3
    with pytest.raises(ValueError, match="op_features must be float64"):
        call(t=t.float())
    with pytest.raises(ValueError, match="coeffs must have 2 entries"):
        call(c=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="k must be >= 1"):
        call(k=0)
    with pytest.raises(ValueError, match="is past num_cells"):
        call(count=4097)
    with pytest.raises(ValueError, match="op_features must be finite"):
        call(t=torch.tensor([[1.0, math.nan]] * 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_nodes must be in"):
        call(n=12)
    with pytest.raises(ValueError, match="zero_op must be"):
        call(z=4)
    with pytest.raises(ValueError, match="is empty: low"):
        call(
            lo=torch.tensor([2.0, -INF], dtype=torch.float64), hi=torch.ones(2, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="op_features has no rows"):
        call(t=torch.ones(0, 2, dtype=torch.float64))


# ------------------------------------------------------------------ torch integration
@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_opcheck():
    t = torch.tensor(nas.op_feature_table(nas.default_signal_ops()))
    c = torch.tensor([1e-9, 1e-9, 0.0], dtype=torch.float64)
    lo = torch.full((3,), -INF, dtype=torch.float64)
    hi = torch.tensor([INF, INF, 10.0], dtype=torch.float64)
    ops = torch.ops.nas
    cases = [
        (ops.enumerate_score_cells, (t, c, 0.0, 4, 3, True, 5, 100)),
        (ops.enumerate_count, (t, c, 0.0, lo, hi, 4, 3, True, 0, 4096, 4, 0.0, 1e-3)),
        # data-dependent output sizes: the fakes' rows are unbacked symbols, which the
        # fake-tensor check (run with a ShapeEnv) compares against the real rows
        (ops.enumerate_top_k, (t, c, 0.0, lo, hi, 4, 3, False, 0, 4096, 5, False)),
        (ops.enumerate_pareto, (t, torch.stack([c, c.flip(0)]), lo, hi, 4, 3, False, 0, 4096)),
        (ops.enumerate_search_top_k, (t, c, 0.0, lo, hi, 4, 5, False, 1000)),
        # the cell filters (connected_only, distinct; tests/test_enumerate_filters.py)
        (ops.enumerate_count, (t, c, 0.0, lo, hi, 4, 3, True, 0, 4096, 4, 0.0, 1e-3, True, True)),
        (ops.enumerate_top_k, (t, c, 0.0, lo, hi, 4, 3, True, 0, 4096, 5, False, True, False)),
        (ops.enumerate_pareto, (t, torch.stack([c, c]), lo, hi, 4, 3, False, 0, 99, False, True)),
        (ops.enumerate_search_top_k, (t, c, 0.0, lo, hi, 4, 5, False, 1000, 3, True, True)),
    ]
    for op, args in cases:
        result = torch.library.opcheck(op.default, args)  # every test, none skipped
        assert set(result) >= {"test_schema", "test_faketensor", "test_aot_dispatch_dynamic"}
        assert all(v == "SUCCESS" for v in result.values()), (op, result)


@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_opcheck_sees_a_wrong_fake(monkeypatch):
    # The fake-tensor check is not vacuous for the data-dependent ops: a fake that
    # claims a fixed row count is caught.
    import nas.ops.enumerate_cells as wrappers

    monkeypatch.setattr(wrappers, "_data_dependent_rows", lambda op_features: 2)
    t = torch.tensor(nas.op_feature_table(nas.default_signal_ops()))
    c = torch.tensor([1e-9, 1e-9, 0.0], dtype=torch.float64)
    lo = torch.full((3,), -INF, dtype=torch.float64)
    hi = torch.full((3,), INF, dtype=torch.float64)
    args = (t, c, 0.0, lo, hi, 4, 3, False, 0, 4096, 5, False)
    result = torch.library.opcheck(torch.ops.nas.enumerate_top_k.default, args,
                                   raise_exception=False)  # fmt: skip
    assert "Shapes" in str(result["test_faketensor"])


@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_fakes_shapes_and_dtypes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    t = torch.tensor(nas.op_feature_table(nas.default_signal_ops()))
    c = torch.tensor([1e-9, 1e-9, 0.0], dtype=torch.float64)
    lo = torch.full((3,), -INF, dtype=torch.float64)
    hi = torch.full((3,), INF, dtype=torch.float64)
    ops = torch.ops.nas
    with FakeTensorMode(shape_env=ShapeEnv()) as mode:
        ft, fc, flo, fhi = (mode.from_tensor(x) for x in (t, c, lo, hi))
        idx, sc, feat = ops.enumerate_top_k(ft, fc, 0.0, flo, fhi, 4, 3, False, 0, 4096, 5, False)
        assert (idx.dtype, sc.dtype, feat.dtype) == (torch.int64, torch.float64, torch.float64)
        assert feat.shape[1] == 3 and str(idx.shape[0]) == str(feat.shape[0])
        codes, _, _ = ops.enumerate_search_top_k(ft, fc, 0.0, flo, fhi, 4, 5, False, 1000)
        assert codes.shape[1] == 6 and codes.dtype == torch.int64
        i, v, n = ops.enumerate_pareto(ft, torch.stack([fc, fc]), flo, fhi, 4, 3, False, 0, 9)
        assert v.shape[1] == 2 and n.dtype == torch.int64
        h, tot = ops.enumerate_count(ft, fc, 0.0, flo, fhi, 4, 3, False, 0, 9, 7, 0.0, 1.0)
        assert tuple(h.shape) == (9,) and tuple(tot.shape) == (2,)
        # with the cell filters
        h, _ = ops.enumerate_count(ft, fc, 0.0, flo, fhi, 4, 3, True, 0, 9, 5, 0.0, 1.0, True, True)
        assert tuple(h.shape) == (7,)
        idx, _, _ = ops.enumerate_top_k(ft, fc, 0.0, flo, fhi, 4, 3, True, 0, 99, 5, False, True)
        assert idx.dtype == torch.int64
        codes, _, _ = ops.enumerate_search_top_k(ft, fc, 0.0, flo, fhi, 4, 5, False, 9, 3, True)
        assert codes.shape[1] == 6


@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_torch_compile_fullgraph():
    t = torch.tensor(nas.op_feature_table(nas.default_signal_ops()))
    c = torch.tensor([1e-9, 1e-9, 0.0], dtype=torch.float64)

    def fn(t):
        f, s = torch.ops.nas.enumerate_score_cells(t, c, 0.0, 4, 3, False, 0, 4096)
        return s * 2 + f.sum(1)

    got = torch.compile(fn, fullgraph=True)(t)
    assert torch.equal(got, fn(t))


# ------------------------------------------------------------------ CLI
def test_cli_enumerate_json(capsys):
    rc = main(["enumerate", "--nodes", "4", "--ops", "all", "--top-k", "5", "--max-params",
               "50000", "--hw", "dgx_spark", "--json"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    space = nas.SearchSpace(4)
    table = nas.op_feature_table(space.ops)
    coeffs, _ = latency_coeffs(nas.hw_profile("dgx_spark"))
    # the CLI lists connected cells unless --allow-disconnected
    ref = top_k_cells(space, table, coeffs, 5, {2: (None, 50_000)}, connected_only=True)
    assert [r["index"] for r in doc["cells"]] == ref.indices.tolist()
    assert [r["latency_s"] for r in doc["cells"]] == ref.scores.tolist()
    assert all(r["params"] <= 50_000 for r in doc["cells"])
    # the one textual cell form (nas.format_cell), which nas train --cell parses back
    cell = space.cell(doc["cells"][0]["index"])
    assert doc["cells"][0]["cell"] == nas.format_cell(cell)
    parsed = nas.parse_cell(doc["cells"][0]["cell"], space.num_nodes)
    assert set(parsed.edges) == {e for e in cell.edges if e.op != nas.OpType.ZERO}


def test_cli_enumerate_table_and_errors(capsys):
    assert main(["enumerate", "--nodes", "3", "--top-k", "3", "--prune-dead", "--count"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "latency" in out and "distinct" in out
    assert main(["enumerate", "--nodes", "3", "--top-k", "0"]) == 2
    assert "--top-k must be in [1, 1,000,000], got 0" in capsys.readouterr().err
    assert main(["enumerate", "--nodes", "6", "--top-k", "3", "--max-params", "50000"]) == 0
    assert "branch and bound" in capsys.readouterr().out


def test_latency_coeffs_and_histogram_range():
    hw = nas.hw_profile("dgx_spark")
    coeffs, bias = latency_coeffs(hw)
    space = nas.SearchSpace(3)
    table = nas.op_feature_table(space.ops)
    f, s = score_cells(space, table, coeffs, bias=bias)
    want = f[:, 0] / (hw.flops_throughput_gflops * 1e9) + f[:, 1] / (hw.mem_bandwidth_gbs * 1e9)
    assert torch.allclose(s, want, rtol=1e-12, atol=0)
    lo, hi = float(s.min()), float(s.max())
    mid = (lo + hi) / 2
    h = score_histogram(space, table, coeffs, 4, (mid, hi))
    assert h.below == int((s < mid).sum()) and h.above == int((s >= hi).sum())
    assert int(h.counts.sum()) + h.below + h.above == space.num_cells()
    assert h.edges[0] == mid and h.edges[-1] == hi


def test_non_contiguous_and_empty_ranges():
    rng, space, table, coeffs = _case(4)
    t = torch.as_tensor(table, dtype=torch.float64)
    t_nc = t.t().contiguous().t()  # same values, column-major strides
    assert not t_nc.is_contiguous() or t.shape[1] == 1
    c = torch.as_tensor(coeffs, dtype=torch.float64)
    c_nc = torch.stack([c, c], 1)[:, 0]
    assert not c_nc.is_contiguous()
    lo = torch.full((t.shape[1],), -INF, dtype=torch.float64)
    hi = torch.full((t.shape[1],), INF, dtype=torch.float64)
    a = nas.ops.enumerate_top_k(
        nas.ops.CellScan(t, c, 0.0, lo, hi, space.num_nodes), 0, space.num_cells(), 7, False
    )
    b = nas.ops.enumerate_top_k(
        nas.ops.CellScan(t_nc, c_nc, 0.0, lo, hi, space.num_nodes), 0, space.num_cells(), 7, False
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # empty ranges: no rows, zero counts, an empty front
    e = top_k_cells(space, table, coeffs, 5, start=3, count=0)
    assert e.indices.shape == (0,) and e.features.shape == (0, table.shape[1])
    assert count_cells(space, table, count=0) == nas.CellCount(0, 0)
    assert pareto_front(space, table, [0, coeffs], count=0).indices.shape == (0,)
    f, s = score_cells(space, table, coeffs, start=space.num_cells(), count=0)
    assert f.shape == (0, table.shape[1]) and s.shape == (0,)


@pytest.mark.parametrize("seed", range(6))
def test_kernels_equal_brute_force_directly(seed):
    # Tiny spaces straight against plain Python over space.enumerate(): top-k with ties
    # (integer tables), constraints, prune_dead, counts and the Pareto front.
    rng = np.random.default_rng(500 + seed)
    num_nodes, num_ops = [(4, 3), (3, 5), (4, 4), (5, 2), (3, 8), (4, 5)][seed]
    space = _space(rng, num_nodes, num_ops, True)
    table = _table(rng, num_ops, 2, "ints" if seed % 2 else "normal")
    coeffs = np.array([1.0, 0.5]) if seed % 2 else rng.normal(size=2)
    prune = seed % 3 != 0
    brute = _reference.enumerate_brute_force(space, table, coeffs, 0.0, prune)
    feats = np.array([b[0] for b in brute])
    limit = float(np.median(feats[:, 1]))
    ok = [i for i, b in enumerate(brute) if b[0][1] <= limit]
    for largest in (False, True):
        want = sorted(ok, key=lambda i: (-brute[i][1] if largest else brute[i][1], i))[:9]
        got = top_k_cells(space, table, coeffs, 9, {1: (None, limit)}, largest=largest,
                          prune_dead=prune)  # fmt: skip
        assert got.indices.tolist() == want
        assert got.scores.tolist() == [brute[i][1] for i in want]
        assert got.features.tolist() == [brute[i][0] for i in want]
    c = count_cells(space, table, {1: (None, limit)}, prune_dead=prune)
    assert c.count == len(ok) and c.distinct == sum(brute[i][2] for i in ok)
    # Pareto front of (feature 0, feature 1) by brute force
    pts = {}
    for i in ok:
        key = tuple(brute[i][0])
        first, n = pts.get(key, (i, 0))
        pts[key] = (first, n + 1)
    front = [
        (k, v) for k, v in sorted(pts.items())
        if not any(o[0] <= k[0] and o[1] <= k[1] and o != k for o in pts)
    ]  # fmt: skip
    pf = pareto_front(space, table, [0, 1], {1: (None, limit)}, prune_dead=prune)
    assert pf.values.tolist() == [list(k) for k, _ in front]
    assert pf.indices.tolist() == [v[0] for _, v in front]
    assert pf.counts.tolist() == [v[1] for _, v in front]


# ------------------------------------------------------------------ hostile sizes (issue 10)
@pytest.mark.parametrize("nodes", [8, 9, 11])
@pytest.mark.parametrize("op", ["zero", "conv_3x3"])
def test_single_op_spaces_at_many_nodes(nodes, op):
    # One cell; the inner block once took every edge (2**28..2**55 zero-pattern tables
    # under prune_dead, 1u << t past 31): now it is capped at 12 edges.
    space = nas.SearchSpace(nodes, [nas.OpType(op)])
    table = nas.op_feature_table(space.ops)
    coeffs, bias = latency_coeffs(nas.hw_profile("dgx_spark"))
    t, c, low, high, _, zero = _ref_args(space, table, coeffs, None)
    assert _reference.enumerate_inner_edges(1, space.num_edges) == 12
    for prune in (False, True):
        got = top_k_cells(space, table, coeffs, 3, prune_dead=prune, bias=bias)
        ref = _reference.enumerate_top_k(t, c, bias, low, high, nodes, zero, prune, 0, 1, 3, False)
        assert got.indices.tolist() == [0]
        assert torch.equal(got.scores, ref[1]) and torch.equal(got.features, ref[2])
        cc = count_cells(space, table, {2: (None, 10**9)}, prune_dead=prune)
        assert (cc.count, cc.distinct) == (1, 1)
        f, s = score_cells(space, table, coeffs, bias=bias, prune_dead=prune)
        assert torch.equal(s, ref[1])
        assert len(pareto_front(space, table, [coeffs, 2], prune_dead=prune).indices) == 1


def test_search_with_more_ops_than_a_fixed_array():
    # op_features with 100 rows (the raw op takes any table): the bound's per-op
    # scratch was a bool[64] written without a bound check.
    rng = np.random.default_rng(5)
    t = torch.tensor(rng.integers(0, 50, size=(100, 2)).astype(np.float64))
    c = torch.tensor([1.0, 0.5], dtype=torch.float64)
    low = torch.tensor([-INF, 40.0], dtype=torch.float64)
    high = torch.tensor([INF, 60.0], dtype=torch.float64)
    codes, s, f = nas.ops.enumerate_search_top_k(
        nas.ops.CellScan(t, c, 0.0, low, high, 3), 7, False, 10**6
    )
    idx, rs, rf = _reference.enumerate_top_k(
        t, c, 0.0, low, high, 3, -1, False, 0, 100**3, 7, False
    )
    want = _reference.decode_cells(idx, 100, 3)
    assert torch.equal(codes, want) and torch.equal(s, rs) and torch.equal(f, rf)


# ------------------------------------------------------------------ the scan under any constraint
SHAPES = ["none", "upper", "lower", "two-sided", "two columns", "all columns", "empty"]


def _shape_constraints(shape, table, space, rng):
    f, _ = score_cells(space, table, count=min(space.num_cells(), 20000))
    q = [np.quantile(f[:, col].numpy(), [0.15, 0.4, 0.85]) for col in range(table.shape[1])]
    col = int(rng.integers(0, table.shape[1]))
    other = (col + 1) % table.shape[1]
    return {
        "none": None,
        "upper": {col: (None, float(q[col][1]))},
        "lower": {col: (float(q[col][1]), None)},
        "two-sided": {col: (float(q[col][0]), float(q[col][2]))},
        "two columns": {col: (float(q[col][0]), None), other: (None, float(q[other][2]))},
        "all columns": {c: (float(q[c][0]), float(q[c][2])) for c in range(table.shape[1])},
        "empty": {col: (float(q[col][2]) + 1e9, None)},
    }[shape]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", range(8))
def test_top_k_every_constraint_shape_matches_reference(shape, seed):
    # Each shape through the sorted-inner-block scan (no prune_dead): spaces with many
    # prefixes, tie-heavy integer tables, ranges that start and end mid-prefix.
    rng = np.random.default_rng(1000 + seed)
    num_nodes, num_ops = [(4, 8), (5, 3), (6, 2), (4, 5)][seed % 4]
    space = _space(rng, num_nodes, num_ops, bool(seed % 2) or num_ops == 8)
    nf = 3 if shape == "all columns" else int(rng.integers(2, 4))
    table = _table(rng, num_ops, nf, "ints" if seed % 2 else "normal")
    coeffs = rng.normal(size=nf) if seed % 3 else np.round(rng.normal(size=nf))
    cons = _shape_constraints(shape, table, space, rng)
    n = space.num_cells()
    start = int(rng.integers(0, 5000)) if seed % 4 == 1 else 0
    count = n - start - (int(rng.integers(0, 5000)) if seed % 4 >= 2 else 0)
    t, c, low, high, nodes, zero = _ref_args(space, table, coeffs, cons)
    for largest in (False, True):
        for k in (1, 10, 300):
            got = top_k_cells(space, table, coeffs, k, cons, largest=largest, bias=0.5,
                              start=start, count=count)  # fmt: skip
            ref = _reference.enumerate_top_k(t, c, 0.5, low, high, nodes, zero, False, start,
                                             count, k, largest)  # fmt: skip
            assert torch.equal(got.indices, ref[0]), (largest, k)
            assert torch.equal(got.scores, ref[1]) and torch.equal(got.features, ref[2])


# ------------------------------------------------------------------ budgets, interruption, sizes
def _hopeless_search():
    # The slowest cells under a parameter budget at 7 nodes, with the costs in thirds:
    # sums of non-integers are inexact, so the search runs cell by cell, and millions of
    # near-ties with the best score keep the bound from cutting (see search_top_k's
    # docstring). The integer table itself finishes in milliseconds (tested above).
    space = nas.SearchSpace(7)
    table = nas.op_feature_table(space.ops) / 3.0
    coeffs, bias = latency_coeffs(nas.hw_profile("dgx_spark"))
    return space, table, coeffs, bias, {2: (None, 50_000 / 3.0)}


def test_search_time_limit_and_node_budget():
    from nas.enumerate import SearchBudgetExceeded

    space, table, coeffs, bias, cons = _hopeless_search()
    t0 = time.perf_counter()
    with pytest.raises(SearchBudgetExceeded, match="time_limit = 0.3 s") as info:
        search_top_k(space, table, coeffs, 10, cons, largest=True, bias=bias, time_limit=0.3)
    assert time.perf_counter() - t0 < 5 and info.value.seconds >= 0.3
    with pytest.raises(SearchBudgetExceeded, match="max_nodes = 2,000"):
        search_top_k(space, table, coeffs, 10, cons, largest=True, bias=bias, max_nodes=2000)
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        search_top_k(space, table, coeffs, 10, cons, time_limit=0)
    # The cancel request is cleared: the next search runs to its answer.
    got = search_top_k(nas.SearchSpace(5), nas.op_feature_table(nas.all_ops()), coeffs, 3, cons,
                       bias=bias, time_limit=30)  # fmt: skip
    ref = top_k_cells(nas.SearchSpace(5), nas.op_feature_table(nas.all_ops()), coeffs, 3, cons,
                      bias=bias)  # fmt: skip
    assert torch.equal(got.indices, ref.indices)


@pytest.mark.skipif(not nas.has_native(), reason="the reference is not a search")
def test_search_stops_on_ctrl_c():
    import _thread
    import threading

    space, table, coeffs, bias, cons = _hopeless_search()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        search_top_k(space, table, coeffs, 10, cons, largest=True, bias=bias)
    assert time.perf_counter() - t0 < 5  # not the minutes the search would take
    # The search stopped and the cancel request is cleared: the next one runs.
    assert len(search_top_k(nas.SearchSpace(5), table, coeffs, 3, cons, bias=bias).scores) == 3


def test_cli_search_budget_one_line(capsys):
    # The CLI's integer cost table finishes (7 nodes, slowest under a budget, once a
    # query that ran into the time limit); a node budget too small still stops it.
    rc = main(["enumerate", "--nodes", "7", "--largest", "--max-params", "50000",
               "--max-search-nodes", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 3
    assert err.count("\n") == 1 and "max_nodes = 5 " in err and "Traceback" not in err
    assert "--max-search-nodes" in err
    rc = main(["enumerate", "--nodes", "7", "--largest", "--max-params", "50000", "--json",
               "--time-limit", "10"])  # fmt: skip
    assert rc == 0 and len(json.loads(capsys.readouterr().out)["cells"]) == 10


def test_cli_count_refused_under_branch_and_bound(capsys):
    assert main(["enumerate", "--nodes", "6", "--count", "--max-params", "50000"]) == 2
    err = capsys.readouterr().err
    assert "--count needs an exhaustive scan" in err


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["enumerate", "--nodes", "4", "--top-k", str(10**9)], "--top-k must be in"),
        (["enumerate", "--nodes", "4", "--top-k", str(10**20)], "--top-k must be in"),
        (["enumerate", "--nodes", str(10**6)], "--nodes must be in"),
        (["enumerate", "--nodes", "6", "--time-limit", "nan"], "--time-limit must be > 0"),
        (["enumerate", "--nodes", "3", "--max-params", "inf", "--json"], "must be a finite"),
        (["enumerate", "--nodes", "3", "--min-params=-inf"], "--min-params must be a finite"),
        (["space", "--nodes", "99"], "num_nodes must be <= 64"),
        (["space", "--nodes", str(10**6)], "num_nodes must be <= 64"),
    ],
)
def test_cli_sizes_refused_before_allocating(capsys, argv, msg):
    t0 = time.perf_counter()
    assert main(argv) == 2
    out = capsys.readouterr()
    assert msg in out.err and out.out == ""  # no partial output
    assert time.perf_counter() - t0 < 2


def test_api_sizes_and_devices():
    space = nas.SearchSpace(3)
    table = nas.op_feature_table(space.ops)
    for k in (10**7, 10**20):
        with pytest.raises(ValueError, match="is more than the 1,000,000 cells"):
            top_k_cells(space, table, 0, k)
        with pytest.raises(ValueError, match="is more than the 1,000,000 cells"):
            search_top_k(space, table, 0, k)
    with pytest.raises(ValueError, match="more than score_cells materialises at once"):
        score_cells(nas.SearchSpace(5), nas.op_feature_table(nas.all_ops()))
    with pytest.raises(ValueError, match="bins = 1000000000000 is more than 1,000,000"):
        score_histogram(space, table, 0, bins=10**12)
    with pytest.raises(ValueError, match="is not a device"):
        top_k_cells(space, table, 0, 3, device="gpu0")
    with pytest.raises(ValueError, match="runs on 'cpu' or 'cuda'"):
        count_cells(space, table, device="meta")
    if not torch.cuda.is_available():
        for fn in (lambda d: top_k_cells(space, table, 0, 3, device=d),
                   lambda d: score_cells(space, table, device=d)):  # fmt: skip
            with pytest.raises(ValueError, match="'cuda' is not available"):
                fn("cuda")


def test_readme_enumerate_example_is_what_the_command_prints(capsys):
    import pathlib
    import shlex

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Exhaustive enumeration") :]
    block = section[section.index("```\n$ nas enumerate") + 4 :]
    block = block[: block.index("```")]
    command, want = block.split("\n", 1)
    assert main(shlex.split(command)[2:]) == 0
    assert capsys.readouterr().out == want


@pytest.mark.skipif(not nas.has_native(), reason="the reference is not a search")
def test_cli_ctrl_c_stops_branch_and_bound():
    import signal
    import subprocess
    import sys

    # The costs in thirds (see _hopeless_search): a search that runs for minutes.
    child = (
        "import sys, nas.enumerate, nas.costs as c; from nas.cli import main; "
        "t = c.op_feature_table; c.op_feature_table = lambda ops: t(ops) / 3.0; "
        "print('ready', file=sys.stderr, flush=True); "
        "sys.exit(main())"
    )
    cmd = [sys.executable, "-c", child,
           "enumerate", "--nodes", "7", "--largest", "--max-params", "16667"]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr.readline() == "ready\n"  # imports done: the search starts at once
    time.sleep(1.0)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert time.perf_counter() - t0 < 5
    assert p.returncode == 130 and err.strip().endswith("nas enumerate: interrupted")
    assert "Traceback" not in err
