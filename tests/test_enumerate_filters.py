"""The cell filters of the enumerate ops: connected_only and distinct.

Three independent statements of the predicates agree: a plain-Python liveness walk
over ``Cell`` objects (``Cell.live_nodes``, written here), the numpy reference
(``_reference.enumerate_filter``) and the kernels (CPU, and CUDA where a GPU is
present), on random small spaces (2-5 nodes, random op subsets with and without the
zero op, random constraints, odd k), with and without prune_dead.
"""

import math

import numpy as np
import pytest
import torch

import nas
from nas.cli import main
from nas.ops import _reference

from .conftest import devices
from .test_enumerate import _ref_args

INF = math.inf
FILTERS = [(False, False), (True, False), (False, True), (True, True)]


def _walk(cell: nas.Cell) -> tuple[bool, bool]:
    """(connected, canonical) of one cell by a plain walk: connected when some node is
    on a non-zero path from node 0 to the last one; canonical when every non-zero edge
    joins two such nodes."""
    live = cell.live_nodes()
    canonical = all(
        e.op == nas.OpType.ZERO or (e.src in live and e.dst in live) for e in cell.edges
    )
    return bool(live), canonical


def _walk_mask(space: nas.SearchSpace, connected_only: bool, distinct: bool) -> np.ndarray:
    out = []
    for cell in space.enumerate():
        conn, canon = _walk(cell)
        out.append((conn or not connected_only) and (canon or not distinct))
    return np.array(out, dtype=bool)


def _space(rng: np.random.Generator, zero: bool) -> nas.SearchSpace:
    num_nodes = int(rng.integers(2, 6))
    # at most ~1e5 cells so the plain-Python walk stays quick
    max_ops = {2: 8, 3: 8, 4: 6, 5: 3}[num_nodes]
    num_ops = int(rng.integers(1 + int(zero), max_ops + 1))
    others = [op for op in nas.all_ops() if op != nas.OpType.ZERO]
    ops = list(rng.choice(others, size=num_ops - int(zero), replace=False))
    if zero:
        ops.insert(int(rng.integers(0, len(ops) + 1)), nas.OpType.ZERO)
    return nas.SearchSpace(num_nodes, ops)


def _case(seed: int):
    rng = np.random.default_rng(1000 + seed)
    space = _space(rng, zero=seed % 4 != 3)
    nf = int(rng.integers(1, 4))
    if seed % 2:  # small integers: many exact ties
        table = rng.integers(0, 4, size=(space.num_ops, nf)).astype(np.float64)
    else:
        table = rng.normal(size=(space.num_ops, nf)) * 10.0 ** rng.integers(-2, 3, size=(1, nf))
    coeffs = rng.normal(size=nf)
    cons = None
    if seed % 3:
        f, _ = nas.score_cells(space, table)
        col = int(rng.integers(0, nf))
        q = np.quantile(f[:, col].numpy(), [0.1, 0.8])
        cons = {col: (float(q[0]), float(q[1])) if seed % 3 == 1 else (None, float(q[1]))}
    return rng, space, table, coeffs, cons


def _ok(space, table, cons, prune: bool = False) -> np.ndarray:
    f, _ = nas.score_cells(space, table, prune_dead=prune)
    ok = np.ones(space.num_cells(), dtype=bool)
    for col, (lo, hi) in (cons or {}).items():
        x = f[:, col].numpy()
        ok &= (x >= (-INF if lo is None else lo)) & (x <= (INF if hi is None else hi))
    return ok


# ------------------------------------------------------------------ the predicates
@pytest.mark.parametrize("seed", range(10))
def test_reference_predicate_equals_plain_walk(seed):
    _, space, _, _, _ = _case(seed)
    zero = space.ops.index(nas.OpType.ZERO) if nas.OpType.ZERO in space.ops else -1
    idx = np.arange(space.num_cells(), dtype=np.int64)
    for co, di in FILTERS:
        ref = _reference.enumerate_filter(space.num_ops, space.num_nodes, zero, idx, co, di)
        assert np.array_equal(ref, _walk_mask(space, co, di)), (co, di)


def test_predicates_by_hand():
    # 3 nodes, edges (0,1) (0,2) (1,2); ops [zero, conv_3x3].
    space = nas.SearchSpace(3, ["zero", "conv_3x3"])
    conn = {i: _walk(space.cell(i))[0] for i in range(space.num_cells())}
    canon = {i: _walk(space.cell(i))[1] for i in range(space.num_cells())}
    # 0->2 alone connects; 0->1 alone does not (node 1 leads nowhere) and is dead.
    assert conn[space.index(space.cell_from_codes([0, 1, 0]))]
    assert not conn[space.index(space.cell_from_codes([1, 0, 0]))]
    assert not canon[space.index(space.cell_from_codes([1, 0, 0]))]
    assert not canon[space.index(space.cell_from_codes([1, 1, 0]))]  # 0->1 dead
    assert canon[space.index(space.cell_from_codes([1, 1, 1]))]
    assert canon[0] and not conn[0]  # the all-zero cell: canonical, disconnected
    t = np.ones((2, 1))
    assert nas.count_cells(space, t, connected_only=True).count == sum(conn.values()) == 5
    assert nas.count_cells(space, t, distinct=True).count == sum(canon.values()) == 4
    assert nas.count_cells(space, t, connected_only=True, distinct=True).count == 3
    # without a zero op every cell passes both
    full = nas.SearchSpace(3, ["conv_3x3", "skip_connect"])
    assert nas.count_cells(full, np.ones((2, 1)), connected_only=True, distinct=True).count == 8


# ------------------------------------------------------------------ kernels vs reference
@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("seed", range(16))
def test_filtered_top_k_count_pareto_histogram(device, seed):
    rng, space, table, coeffs, cons = _case(seed)
    kw = dict(device=device)
    walks = {fl: _walk_mask(space, *fl) for fl in FILTERS}
    for prune in (False, True):
        ok = _ok(space, table, cons, prune)
        _, scores = nas.score_cells(space, table, coeffs, prune_dead=prune)
        scores = scores.numpy()
        for co, di in FILTERS:
            keep = ok & walks[co, di]
            filt = dict(connected_only=co, distinct=di, prune_dead=prune)
            # top-k, both directions, odd k: exactly the filtered cells' order
            k = int(rng.choice([1, 3, 7, 13]))
            for largest in (False, True):
                got = nas.top_k_cells(space, table, coeffs, k, cons, largest=largest, **filt, **kw)
                cand = np.nonzero(keep)[0]
                order = np.lexsort((cand, -scores[cand] if largest else scores[cand]))[:k]
                assert got.indices.cpu().tolist() == cand[order].tolist(), (prune, co, di)
                assert got.scores.cpu().tolist() == scores[cand[order]].tolist()
            # count: the filtered cells; its distinct total counts canonical ones
            c = nas.count_cells(space, table, cons, **filt, **kw)
            assert c.count == int(keep.sum())
            # histogram over the filtered scores
            if keep.any():
                h = nas.score_histogram(space, table, coeffs, 5, None, cons, **filt, **kw)
                assert int(h.counts.sum()) + h.below + h.above == int(keep.sum())
            # the same against the reference ops, bit for bit
            t, c_, low, high, nodes, zero = _ref_args(space, table, coeffs, cons)
            args = (t, c_, 0.0, low, high, nodes, zero, prune, 0, space.num_cells())
            ref = _reference.enumerate_count(*args, 4, -1.0, 1.0, co, di)
            nat = torch.ops.nas.enumerate_count(
                *(x.to(device) if isinstance(x, torch.Tensor) else x for x in args),
                4, -1.0, 1.0, co, di,
            )  # fmt: skip
            assert torch.equal(nat[0].cpu(), ref[0]) and torch.equal(nat[1].cpu(), ref[1])
            pf = nas.pareto_front(space, table, [coeffs, 0], cons, **filt, **kw)
            rp = _reference.enumerate_pareto(
                t, torch.stack([c_, torch.eye(table.shape[1], dtype=torch.float64)[0]]),
                low, high, nodes, zero, prune, 0, space.num_cells(), co, di,
            )  # fmt: skip
            assert pf.indices.cpu().tolist() == rp[0].tolist()
            assert torch.equal(pf.values.cpu(), rp[1]) and torch.equal(pf.counts.cpu(), rp[2])
            assert all(keep[i] for i in pf.indices.cpu().tolist())


@pytest.mark.parametrize("seed", range(12))
def test_filtered_top_k_kernel_equals_reference_on_ranges(seed):
    # Partial ranges exercise the tiled scan at both ends and the sorted inner block
    # (no prune_dead) between them.
    rng, space, table, coeffs, cons = _case(seed)
    t, c, low, high, nodes, zero = _ref_args(space, table, coeffs, cons)
    n = space.num_cells()
    start = int(rng.integers(0, max(1, n // 3)))
    count = int(rng.integers(0, n - start + 1))
    for prune in (False, True):
        for co, di in FILTERS:
            for largest in (False, True):
                k = int(rng.choice([1, 2, 5, 11, 97]))
                args = (t, c, 0.5, low, high, nodes, zero, prune, start, count, k, largest, co, di)
                ref = _reference.enumerate_top_k(*args)
                nat = torch.ops.nas.enumerate_top_k(*args)
                for a, b in zip(nat, ref, strict=True):
                    assert torch.equal(a, b), (prune, co, di, largest, k)


def test_distinct_count_equals_count_with_distinct_filter():
    for seed in range(8):
        _, space, table, _, cons = _case(seed)
        for co in (False, True):
            base = nas.count_cells(space, table, cons, prune_dead=True, connected_only=co)
            only = nas.count_cells(space, table, cons, prune_dead=True, connected_only=co,
                               distinct=True)  # fmt: skip
            assert only.count == base.distinct == only.distinct


def test_connected_top_1_is_not_the_all_zero_cell():
    # The issue: with prune_dead, the all-zero cell costs nothing and is "the fastest
    # model"; connected_only gives the fastest cell that computes something.
    space = nas.SearchSpace(4, "all")
    table = nas.op_feature_table(space.ops)
    coeffs, bias = nas.latency_coeffs(nas.hw_profile("dgx_spark"))
    plain = nas.top_k_cells(space, table, coeffs, 3, bias=bias, prune_dead=True)
    assert not space.cell(int(plain.indices[0])).live_nodes()  # disconnected
    conn = nas.top_k_cells(space, table, coeffs, 3, bias=bias, prune_dead=True, connected_only=True)
    for i in conn.indices.tolist():
        assert space.cell(i).live_nodes()
    # distinct: each pruned cell once, so the pruned cells of the top-k differ
    dis = nas.top_k_cells(space, table, coeffs, 20, bias=bias, prune_dead=True, connected_only=True,
                      distinct=True)  # fmt: skip
    pruned = [str(space.cell(i).pruned()) for i in dis.indices.tolist()]
    assert len(set(pruned)) == len(pruned) == 20
    many = nas.top_k_cells(
        space, table, coeffs, 20, bias=bias, prune_dead=True, connected_only=True
    )
    assert len({str(space.cell(i).pruned()) for i in many.indices.tolist()}) < 20


# ------------------------------------------------------------------ branch and bound
@pytest.mark.parametrize("seed", range(10))
def test_filtered_search_equals_exhaustive(seed):
    rng, space, table, coeffs, cons = _case(seed)
    k = int(rng.choice([1, 3, 9]))
    for co, di in FILTERS:
        for largest in (False, True):
            kw = dict(largest=largest, connected_only=co, distinct=di)
            got = nas.search_top_k(space, table, coeffs, k, cons, **kw)
            want = nas.top_k_cells(space, table, coeffs, k, cons, **kw)
            assert got.indices.tolist() == want.indices.tolist(), (co, di, largest)
            assert torch.equal(got.scores, want.scores)
            assert torch.equal(got.features, want.features)


def test_filtered_search_at_6_nodes():
    # Past what can be scanned quickly: every returned cell is connected and canonical,
    # and the cells are ranked by score.
    space = nas.SearchSpace(6, "all")
    table = nas.op_feature_table(space.ops)
    coeffs, bias = nas.latency_coeffs(nas.hw_profile("dgx_spark"))
    res = nas.search_top_k(space, table, coeffs, 5, bias=bias, connected_only=True, distinct=True)
    assert len(res.indices) == 5
    for i in res.indices.tolist():
        conn, canon = _walk(space.cell(i))
        assert conn and canon
    assert res.scores.tolist() == sorted(res.scores.tolist())
    plain = nas.search_top_k(space, table, coeffs, 1, bias=bias)
    assert not space.cell(int(plain.indices[0])).live_nodes()


@pytest.mark.parametrize("nodes", [5, 8])
def test_filtered_search_with_exact_sums(nodes):
    # Integer tables take the multiset (op class) search. Its answer is kept when every
    # cell in it passes the filters (the slowest cells under a params budget: all
    # connected) and redone cell by cell otherwise (the fastest: the all-zero cell).
    space = nas.SearchSpace(nodes, "all")
    table = nas.op_feature_table(space.ops)
    coeffs, bias = nas.latency_coeffs(nas.hw_profile("dgx_spark"))
    cons = {2: (36_864, 50_000)}
    kw = dict(largest=True, bias=bias, time_limit=30.0)
    plain = nas.search_top_k(space, table, coeffs, 7, cons, **kw)
    both = nas.search_top_k(space, table, coeffs, 7, cons, connected_only=True, distinct=True, **kw)
    assert list(plain.indices) == list(both.indices)
    assert torch.equal(plain.scores, both.scores)
    for i in both.indices:
        assert all(_walk(space.cell(int(i))))
    fast = nas.search_top_k(space, table, coeffs, 3, bias=bias, connected_only=True)
    assert not space.cell(int(nas.search_top_k(space, table, coeffs, 1).indices[0])).live_nodes()
    for i in fast.indices:
        assert space.cell(int(i)).live_nodes()
    if nodes == 5:  # where the exhaustive scan is quick enough to compare
        for largest, c in ((True, cons), (False, None)):
            for co, di in FILTERS:
                got = nas.search_top_k(space, table, coeffs, 7, c, largest=largest, bias=bias,
                                       connected_only=co, distinct=di)  # fmt: skip
                want = nas.top_k_cells(space, table, coeffs, 7, c, largest=largest, bias=bias,
                                       connected_only=co, distinct=di)  # fmt: skip
                assert got.indices.tolist() == want.indices.tolist(), (largest, co, di)


def test_bad_filter_arguments():
    space = nas.SearchSpace(3, ["zero", "conv_3x3"])
    with pytest.raises(ValueError, match="connected_only must be True or False"):
        nas.top_k_cells(space, np.ones((2, 1)), 0, 1, connected_only="yes")
    with pytest.raises(ValueError, match="distinct must be True or False"):
        nas.count_cells(space, np.ones((2, 1)), distinct=1)


# ------------------------------------------------------------------ CLI
def test_cli_defaults_to_connected_cells(capsys):
    import json

    argv = ["enumerate", "--nodes", "4", "--ops", "all", "--top-k", "3", "--prune-dead", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["connected_only"] is True and doc["distinct"] is False
    space = nas.SearchSpace(4, "all")
    for row in doc["cells"]:
        assert space.cell(row["index"]).live_nodes()
    assert main([*argv, "--allow-disconnected"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["connected_only"] is False
    assert not space.cell(doc["cells"][0]["index"]).live_nodes()
    assert main([*argv, "--distinct", "--top-k", "10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["distinct"] is True
    assert len({row["cell"] for row in doc["cells"]}) == 10


def test_cli_distinct_with_count_and_branch_and_bound(capsys):
    import json

    argv = ["enumerate", "--nodes", "4", "--ops", "all", "--prune-dead", "--count", "--json"]
    assert main([*argv, "--distinct"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["qualifying_cells"] == d["distinct_pruned_cells"]
    assert main(argv) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["distinct_pruned_cells"] == d["qualifying_cells"] < plain["qualifying_cells"]
    assert main(["enumerate", "--nodes", "6", "--ops", "all", "--top-k", "2", "--distinct",
                 "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "branch and bound" and doc["distinct"] is True
    space = nas.SearchSpace(6, "all")
    for row in doc["cells"]:
        assert all(_walk(space.cell(row["index"])))
