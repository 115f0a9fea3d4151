"""Cell features as pure functions (nas.latency_features): the estimator's features are
these functions of (feature set, op list, costs, hardware), the liveness walk matches a
per-cell replay of CellModule, and every feature set runs that walk once per batch."""

import numpy as np
import pytest
import torch

import nas
import nas.latency_features as lf
from nas import HWProfile, LatencyEstimator, OpType

SUB_OPS = [OpType.SEP_CONV_3X3, OpType.MAX_POOL_3X3, OpType.ZERO, OpType.SKIP_CONNECT]


def sample_cells(space, n, seed):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("features", lf.FEATURE_SETS)
def test_estimator_features_are_the_pure_functions(features):
    hw = HWProfile("odd", 37.5, 211.0)
    est = LatencyEstimator(hw, features=features, ops=SUB_OPS, shape=(3, 17, 33))
    space = nas.SearchSpace(5, SUB_OPS)
    cells = sample_cells(space, 40, seed=3)
    assert est.columns == lf.feature_columns(features, SUB_OPS)
    table = lf.op_raw_table(features, SUB_OPS, est.op_costs, hw)
    assert np.array_equal(est.feature_table(), table[[lf.CANON.index(op) for op in SUB_OPS]])
    for shape in ((3, 17, 33), (8, 32, 32)):
        costs = nas.op_costs_1d(shape[1], shape[2], batch=shape[0])
        got = lf.cell_features(features, SUB_OPS, costs, hw, cells)
        assert np.array_equal(got, est.cell_features(cells, shape=shape))
        idx = torch.as_tensor([space.index(c) for c in cells])
        assert np.array_equal(lf.cell_features(features, SUB_OPS, costs, hw, idx, space), got)


def test_unknown_feature_set_is_named():
    with pytest.raises(ValueError, match=r"unknown feature set 'layouts'; known: seed, lut"):
        lf.feature_columns("layouts", lf.CANON)


def _replay(cell):
    """Per-node liveness, layout ("T" True) and gradient need of one cell, in
    CellModule's order (into node j, by increasing source), one edge at a time."""
    op_of = {(e.src, e.dst): e.op for e in cell.edges}
    live, t, grad = {0: True}, {0: False}, {0: False}
    for j in range(1, cell.num_nodes):
        live[j], t[j], grad[j] = False, False, False
        for i in range(j):
            op = op_of.get((i, j), OpType.ZERO)
            if op == OpType.ZERO or not live[i]:
                continue
            if not live[j]:  # the first input sets the node's layout
                t[j] = lf.OP_OUTPUT_T[op][int(t[i])]
            live[j] = True
            grad[j] = grad[j] or op in lf.KERNEL_OPS or grad[i]
    return live, t, grad


def test_cell_walk_matches_a_per_cell_replay():
    space = nas.SearchSpace(5)
    cells = sample_cells(space, 300, seed=11)
    cells.append(space.cell_from_codes([space.ops.index(OpType.ZERO)] * space.num_edges))
    codes = lf.cells_to_codes(cells)[5][1]
    walk = lf.cell_walk(5, codes)
    assert walk.num_nodes == 5
    dead_out = 0
    for r, cell in enumerate(cells):
        live, t, grad = _replay(cell)
        for j in range(5):
            assert bool(walk.node_live[j][r]) == live[j], (str(cell), j)
            if live[j]:
                assert bool(walk.node_t[j][r]) == t[j], (str(cell), j)
            assert bool(walk.node_g[j][r]) == grad[j], (str(cell), j)
        dead_out += not live[4]
    assert 0 < dead_out < len(cells)  # the sample has dead outputs and live ones


@pytest.mark.parametrize("features", lf.FEATURE_SETS)
def test_every_feature_set_walks_the_cells_once(features, monkeypatch):
    walks = []
    real = lf.cell_walk

    def counting(num_nodes, codes):
        walks.append(num_nodes)
        return real(num_nodes, codes)

    monkeypatch.setattr(lf, "cell_walk", counting)
    est = LatencyEstimator(nas.dgx_spark(), features=features)
    cells = sample_cells(nas.SearchSpace(4), 30, seed=5)
    est.cell_features(cells)
    # "seed" sums over every edge, dead or not: no walk at all
    assert walks == ([] if features == "seed" else [4])
