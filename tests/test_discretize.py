import itertools
import math

import numpy as np
import pytest
import torch

import nas
from nas import OpType, SearchSpace, discretize
from nas.discretize import cell_log_prob


def _space(n=3, ops=None):
    return SearchSpace(n, ops)


def test_seed_argmax_edge_major_and_total_params():
    space = _space(3)  # 3 edges x 8 ops
    alpha = torch.zeros(3, 8)
    alpha[0, 2] = 1.0  # sep_conv_3x3 on 0->1
    alpha[1, 7] = 1.0  # zero on 0->2
    alpha[2, 4] = 1.0  # avg_pool on 1->2
    arch = discretize(alpha.flatten(), space)
    assert isinstance(arch, nas.DiscretizedArch)
    assert [(e.src, e.dst, e.op) for e in arch.cell.edges] == [
        (0, 1, OpType.SEP_CONV_3X3),
        (0, 2, OpType.ZERO),  # zero is kept with the argmax rule
        (1, 2, OpType.AVG_POOL_3X3),
    ]
    assert arch.total_params == nas.default_op_params()[OpType.SEP_CONV_3X3] == 9 * 64 + 64 * 64
    # [E, K] and numpy / list inputs give the same cell
    assert discretize(alpha, space) == arch
    assert discretize(alpha.numpy(), space) == arch
    assert discretize(alpha.flatten().tolist(), space) == arch
    assert space.index(arch.cell) >= 0  # a cell of the space


def test_ties_go_to_lowest_index():
    space = _space(3)
    arch = discretize(torch.zeros(24), space)
    assert all(e.op == OpType.CONV_3X3 for e in arch.cell.edges)
    alpha = torch.zeros(3, 8)
    alpha[:, 5] = alpha[:, 6] = 2.0
    arch = discretize(alpha, space)
    assert all(e.op == OpType.MAX_POOL_3X3 for e in arch.cell.edges)


def test_error_messages():
    space = _space(3)
    with pytest.raises(ValueError) as ei:
        discretize([0.0, 1.0], space)
    assert str(ei.value) == "alpha length 2 does not match num_edges(3) * num_ops(8) = 24"
    with pytest.raises(ValueError) as ei:
        discretize(torch.zeros(24), space, max_params=1000)
    assert str(ei.value) == "discretized architecture has 110592 params, exceeds max_params 1000"
    with pytest.raises(ValueError, match=r"alpha shape \(3, 7\) does not match"):
        discretize(torch.zeros(3, 7), space)
    with pytest.raises(ValueError, match="max_params must be >= 0"):
        discretize(torch.zeros(24), space, max_params=-1)
    with pytest.raises(ValueError, match="rule must be one of argmax, darts, got 'top2'"):
        discretize(torch.zeros(24), space, rule="top2")
    with pytest.raises(ValueError, match="no entry for op 'zero'"):
        discretize(torch.zeros(24), space, params={op: 0 for op in nas.all_ops()[:7]})


def test_budget_equal_is_allowed_and_zero_means_none():
    space = _space(3)
    assert discretize(torch.zeros(24), space, max_params=110592).total_params == 110592
    assert discretize(torch.zeros(24), space, max_params=0).total_params == 110592


def test_nan_is_an_error_not_index_zero():
    space = _space(3)
    alpha = torch.zeros(24)
    alpha[9] = math.nan
    with pytest.raises(
        ValueError, match=r"alpha contains NaN at index 9 \(edge 0->2, op conv_5x5\)"
    ):
        discretize(alpha, space)
    alpha = torch.zeros(24)
    alpha[0] = math.nan  # the seed picked the NaN at index 0
    with pytest.raises(ValueError, match="NaN at index 0"):
        discretize(alpha, space)
    alpha = torch.zeros(24)
    alpha[3] = math.inf
    with pytest.raises(ValueError, match=r"\+inf at index 3"):
        discretize(alpha, space)
    alpha = torch.full((3, 8), -math.inf)
    with pytest.raises(ValueError, match="-inf for every op"):
        discretize(alpha, space)


def test_neg_inf_masks_an_op():
    space = _space(3)
    alpha = torch.zeros(3, 8)
    alpha[:, 0] = -math.inf
    arch = discretize(alpha, space)
    assert all(e.op == OpType.CONV_5X5 for e in arch.cell.edges)


def test_params_table_1d():
    space = _space(3, ["conv_3x3", "skip_connect"])
    arch = discretize(torch.zeros(3, 2), space, params=nas.op_params_1d(16))
    assert arch.total_params == 3 * 3 * 16 * 16


def test_darts_rule_top2_no_zero():
    space = _space(4)  # edges 0-1 0-2 0-3 1-2 1-3 2-3
    rng = np.random.default_rng(0)
    alpha = rng.normal(size=(6, 8))
    alpha[:, 7] = 10.0  # zero dominates everywhere: the darts rule still ignores it
    alpha[2, 3] = 5.0  # 0->3 strong sep_conv_5x5
    alpha[5, 6] = 6.0  # 2->3 strong skip
    arch = discretize(alpha, space, rule="darts")
    ops = {(e.src, e.dst): e.op for e in arch.cell.edges}
    assert len(ops) == 6  # dropped edges are zero edges: still a cell of the space
    assert space.index(arch.cell) >= 0
    assert ops[(0, 3)] == OpType.SEP_CONV_5X5 and ops[(2, 3)] == OpType.SKIP_CONNECT
    assert ops[(1, 3)] == OpType.ZERO
    assert ops[(0, 1)] != OpType.ZERO and ops[(0, 2)] != OpType.ZERO
    assert ops[(1, 2)] != OpType.ZERO
    # every node keeps min(2, j) non-zero incoming edges
    for j in range(1, 4):
        kept = [e for e in arch.cell.edges if e.dst == j and e.op != OpType.ZERO]
        assert len(kept) == min(2, j)


def test_darts_rule_matches_brute_force_and_ties():
    space = _space(4, ["conv_3x3", "max_pool_3x3", "skip_connect", "zero"])
    rng = np.random.default_rng(1)
    for _ in range(5):
        alpha = rng.normal(size=(6, 4))
        arch = discretize(alpha, space, rule="darts")
        best = max(_darts_cells(space), key=lambda c: cell_log_prob(alpha, space, c, "darts"))
        assert arch.cell == best
    # all-equal logits: lowest edges and lowest op (conv_3x3) win
    arch = discretize(np.zeros((6, 4)), space, rule="darts")
    ops = {(e.src, e.dst): e.op for e in arch.cell.edges}
    assert ops == {
        (0, 1): OpType.CONV_3X3,
        (0, 2): OpType.CONV_3X3,
        (1, 2): OpType.CONV_3X3,
        (0, 3): OpType.CONV_3X3,
        (1, 3): OpType.CONV_3X3,
        (2, 3): OpType.ZERO,
    }


def test_darts_rule_without_zero_in_space_leaves_edges_out():
    space = _space(4, ["avg_pool_3x3", "skip_connect"])
    arch = discretize(np.zeros((6, 2)), space, rule="darts")
    assert [(e.src, e.dst) for e in arch.cell.edges] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    with pytest.raises(ValueError, match="needs an op other than zero"):
        discretize(np.zeros(3), _space(3, ["zero"]), rule="darts")


def _darts_cells(space):
    """Every cell of the space with exactly min(2, j) non-zero edges into node j."""
    zero = space.ops.index(OpType.ZERO)
    for codes in itertools.product(range(space.num_ops), repeat=space.num_edges):
        ok = True
        for j in range(1, space.num_nodes):
            n = sum(1 for (_, d), c in zip(space.edges, codes, strict=True) if d == j and c != zero)
            ok &= n == min(2, j)
        if ok:
            yield space.cell_from_codes(codes)


def _brute_argmax(alpha, space, table, budget):
    """The max summed log-softmax over all cells within budget, and its params."""
    logw = torch.log_softmax(torch.as_tensor(alpha, dtype=torch.float64), 1).numpy()
    codes = np.array(list(itertools.product(range(space.num_ops), repeat=space.num_edges)))
    score = logw[np.arange(space.num_edges), codes].sum(1)
    p = np.array([table[op] for op in space.ops])[codes].sum(1)
    score[p > budget] = -np.inf
    return score.max(), codes[score.argmax()]


@pytest.mark.parametrize("seed", range(6))
def test_fit_budget_argmax_is_exact_vs_brute_force(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        space, table = _space(3), nas.default_op_params()
    else:
        space = _space(4, ["conv_3x3", "conv_5x5", "sep_conv_3x3", "skip_connect", "zero"])
        table = nas.op_params_1d(8)
    alpha = rng.normal(size=(space.num_edges, space.num_ops)) * 2
    alpha[:, 0] += 3.0  # make the unconstrained cell expensive
    full = discretize(alpha, space, params=table).total_params
    sizes = sorted({table[op] for op in space.ops})
    for budget in {max(1, full // 2), full // 3 + 1, sizes[1], full - 1, 1}:
        want, _ = _brute_argmax(alpha, space, table, budget)
        arch = discretize(alpha, space, budget, fit_budget=True, params=table)
        assert arch.total_params <= budget
        assert arch.total_params == nas.cell_params(arch.cell, table)
        assert cell_log_prob(alpha, space, arch.cell) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_fit_budget_darts_is_exact_vs_brute_force(seed):
    rng = np.random.default_rng(10 + seed)
    space = _space(4, ["conv_3x3", "sep_conv_3x3", "avg_pool_3x3", "zero"])
    table = nas.op_params_1d(8)
    cells = list(_darts_cells(space))
    alpha = rng.normal(size=(6, 4)) * 2
    alpha[:, 0] += 2.0
    full = discretize(alpha, space, rule="darts", params=table).total_params
    for budget in {full - 1, full // 2, 8 * 3 + 64 + 1, 100, 1}:
        fits = [c for c in cells if nas.cell_params(c, table) <= budget]
        arch = discretize(alpha, space, budget, rule="darts", fit_budget=True, params=table)
        want = max(cell_log_prob(alpha, space, c, "darts") for c in fits)
        assert arch.total_params <= budget
        assert arch.cell in cells  # still a darts cell: min(2, j) non-zero edges per node
        assert cell_log_prob(alpha, space, arch.cell, "darts") == pytest.approx(want, abs=1e-9)


def test_fit_budget_returns_rule_cell_when_it_fits_and_errors_when_nothing_fits():
    space = _space(3)
    alpha = np.random.default_rng(3).normal(size=(3, 8))
    plain = discretize(alpha, space)
    assert discretize(alpha, space, plain.total_params or 1, fit_budget=True) == plain
    # argmax: all-zero-param cells always fit; darts: the cheapest non-zero op is free
    # (pools), so force a table where every non-zero op costs params.
    table = {op: (0 if op == OpType.ZERO else 10) for op in nas.all_ops()}
    with pytest.raises(ValueError, match="no darts cell fits max_params 5: the smallest has 30"):
        discretize(alpha, space, 5, rule="darts", fit_budget=True, params=table)


def test_fit_budget_scales_to_8_nodes():
    space = _space(8)  # 28 edges, 8 ops: 8**28 cells
    rng = np.random.default_rng(4)
    alpha = rng.normal(size=(28, 8))
    alpha[:, :4] += 2.0
    table = nas.op_params_1d(32)
    for rule in ("argmax", "darts"):
        full = discretize(alpha, space, rule=rule, params=table).total_params
        arch = discretize(alpha, space, full // 3, rule=rule, fit_budget=True, params=table)
        assert arch.total_params <= full // 3
        # the budgeted optimum can never beat the unconstrained one
        lp = cell_log_prob(alpha, space, arch.cell, rule)
        assert lp <= cell_log_prob(alpha, space, discretize(alpha, space, rule=rule).cell, rule)


@pytest.mark.parametrize("rule", ["argmax", "darts"])
def test_discretized_arch_round_trips_through_gguf(rule):
    # what a search hands to export: the discretized cell and its trained weights
    net = nas.SuperNet(nas.SearchSpace(4, ["conv_3x3", "skip_connect", "zero"]), 8, 2)
    with torch.no_grad():
        net.alpha.copy_(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)))
    arch = net.discretize(rule=rule)
    model = nas.signal_ops.CellModule(arch.cell, 8)
    weights = {k: v.detach().numpy().ravel() for k, v in model.state_dict().items()}
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sum(w.size for w in weights.values()) == arch.total_params
    cfg = nas.ExportConfig(model_name="darts", hidden_dim=8, num_layers=2)
    nas.validate_export_round_trip(arch, cfg, weights, shapes)
