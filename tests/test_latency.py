"""Latency estimator: seed behaviour, fitting, errors, vectorised estimates, measurement
plumbing and the ``nas calibrate`` CLI. No timing assertions: measurements use tiny
shapes or an injected clock."""

import json
import math
import platform
import sys

import numpy as np
import pytest
import torch

import nas
from nas import CalibrationPoint, HWProfile, LatencyEstimator, OpType
from nas._io import file_mode
from nas.calibrate import measure_cells, repeatability, sample_cells, time_cells
from nas.cli import main
from nas.latency import LAYOUTS, OP_OUTPUT_T, accuracy_metrics
from nas.signal_ops import CellModule, build_op

ALL_CONV3 = nas.make_cell(
    4, [(i, j, "conv_3x3") for i in range(4) for j in range(i + 1, 4)]
)  # 4 nodes -> 6 edges


# -- seed behaviour -------------------------------------------------------------------
def test_seed_defaults_and_worked_example():
    est = LatencyEstimator(nas.dgx_spark())
    assert (est.alpha, est.beta, est.bias) == (1.0, 1.0, 0.0)
    assert len(ALL_CONV3.edges) == 6
    assert est.compute_time(ALL_CONV3) == 4.52984832e-4
    assert est.memory_time(ALL_CONV3) == 2.015232e-5
    assert est.estimate(ALL_CONV3) == 4.7313715200000004e-4
    assert est.latency_estimate(ALL_CONV3) == est.estimate(ALL_CONV3)
    assert est.estimate_batch([ALL_CONV3])[0] == pytest.approx(4.7313715200000004e-4, rel=1e-15)


def test_rate_zero_drops_the_term():
    est = LatencyEstimator(HWProfile("no-compute", 0.0, 200.0))
    assert est.compute_time(ALL_CONV3) == 0.0
    assert est.estimate(ALL_CONV3) == pytest.approx(2.015232e-5)
    w, _ = est.coeffs()
    assert w[0] == 0.0 and w[1] == pytest.approx(1 / 200e9)
    est = LatencyEstimator(HWProfile("nothing", 0, 0.0))
    assert est.estimate(ALL_CONV3) == 0.0


@pytest.mark.parametrize(
    "flops, mem, field",
    [
        (-1.0, 200.0, "flops_throughput_gflops"),
        (1000.0, float("nan"), "mem_bandwidth_gbs"),
        (float("inf"), 200.0, "flops_throughput_gflops"),
        (1000.0, -200, "mem_bandwidth_gbs"),
    ],
)
def test_negative_nan_or_infinite_rates_are_errors(flops, mem, field):
    # they used to estimate 0 or silently drop a term
    with pytest.raises(ValueError, match=rf"HWProfile.{field} is .*must be finite and >= 0"):
        HWProfile("x", flops, mem)
    with pytest.raises(ValueError, match="HWProfile.mem_bandwidth_gbs must be a number"):
        HWProfile("x", 1.0, "200")


def test_calibration_latencies_must_be_numbers():
    # a str latency was parsed by np.asarray and fitted as if it were a number
    with pytest.raises(ValueError, match="CalibrationPoint.latency must be a number .*'0.001'"):
        CalibrationPoint(ALL_CONV3, "0.001")
    with pytest.raises(ValueError, match="CalibrationPoint.latency must be a number"):
        CalibrationPoint(ALL_CONV3, None)
    assert CalibrationPoint(ALL_CONV3, np.float32(1e-3)).latency == np.float32(1e-3)


def test_coeffs_and_feature_table_reproduce_seed_estimates():
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark())
    w, b = est.coeffs()
    assert w[0] == pytest.approx(1.0 / 1e12) and w[1] == pytest.approx(1.0 / 200e9)
    table = est.feature_table(space.ops)  # [K, 2]: flops, mem_bytes
    assert table.shape == (8, 2) and est.additive
    np.testing.assert_array_equal(table[:, :2], nas.op_feature_table(space.ops)[:, :2])
    idx = torch.randint(0, space.num_cells(), (300,), generator=torch.Generator().manual_seed(1))
    codes = space.decode(idx)
    routed = table[codes.numpy()].sum(axis=1) @ w + b
    np.testing.assert_allclose(est.estimate_batch(idx, space), routed, rtol=1e-12)


@pytest.mark.parametrize("features", nas.FEATURE_SETS)
def test_estimate_batch_matches_estimate(features):
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark(), features=features, shape=(8, 16, 32))
    est._weights = np.linspace(0.5, 2.0, len(est.columns))  # arbitrary, non-trivial
    est.bias = 3e-6
    idx = torch.arange(0, space.num_cells(), 997)
    cells = space.cells(idx)
    one = np.array([est.estimate(c) for c in cells])
    np.testing.assert_allclose(est.estimate_batch(cells), one, rtol=1e-12)
    np.testing.assert_allclose(est.estimate_batch(idx, space), one, rtol=1e-12)
    np.testing.assert_allclose(est.estimate_batch(space.decode(idx), space), one, rtol=1e-12)
    # a space over a sub-list of ops maps its codes to the right ops
    sub = nas.SearchSpace(3, ["skip_connect", "conv_5x5"])
    sub_idx = torch.arange(sub.num_cells())
    np.testing.assert_allclose(
        est.estimate_batch(sub_idx, sub),
        [est.estimate(c) for c in sub.cells(sub_idx)],
        rtol=1e-12,
    )


def test_estimate_batch_bad_input():
    space = nas.SearchSpace(3)
    est = LatencyEstimator(nas.dgx_spark())
    with pytest.raises(ValueError, match="need the space"):
        est.estimate_batch(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"codes must be \[n, num_edges=3\]"):
        est.estimate_batch(torch.zeros(2, 4, dtype=torch.int64), space)
    with pytest.raises(ValueError, match=r"op codes must lie in \[0, 8\)"):
        est.estimate_batch(torch.full((2, 3), 8), space)
    lut = LatencyEstimator(nas.dgx_spark(), features="lut", ops=["zero", "skip_connect"])
    with pytest.raises(ValueError, match=r"'conv_3x3'\] are not in the estimator's op list"):
        lut.estimate(ALL_CONV3)
    with pytest.raises(ValueError, match="unknown feature set 'big'"):
        LatencyEstimator(nas.dgx_spark(), features="big")


# -- live edges: what CellModule really runs --------------------------------------------
def _ops_run_by_cell_module(cell: nas.Cell) -> dict[OpType, int]:
    module = CellModule(cell, 4)
    ran: dict[OpType, int] = {}
    for m in module.ops:
        m.register_forward_hook(lambda mod, i, o: ran.__setitem__(mod.op, ran.get(mod.op, 0) + 1))
    module(torch.randn(1, 5, 4))
    return ran


def test_lut_counts_match_the_ops_cell_module_runs():
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark(), features="lut")
    cells = sample_cells(space, 150, seed=3)
    cells.append(nas.make_cell(4, [(0, 1, "zero"), (1, 2, "conv_3x3"), (1, 3, "conv_5x5")]))
    feats = est.cell_features(cells)
    dead = 0
    for cell, row in zip(cells, feats, strict=True):
        ran = _ops_run_by_cell_module(cell)
        counted = {op: row[est.columns.index(f"n_{op.value}")] for op in est._count_ops}
        assert counted == {op: ran.get(op, 0) for op in est._count_ops}, str(cell)
        dead += sum(1 for e in cell.edges if e.op != OpType.ZERO) - sum(ran.values())
    assert dead > 0  # the sample does contain edges that CellModule skips
    # launches: kernels of a fully live all-conv cell: 6 * (relu + conv) + 3 node adds
    assert est.cell_features([ALL_CONV3])[0, -1] == 15
    # an all-zero cell runs nothing but zeros_like for its output
    empty = nas.make_cell(3, [(0, 1, "zero"), (0, 2, "zero"), (1, 2, "zero")])
    assert est.cell_features([empty])[0, -1] == 1 and est.estimate(empty) == 0.0


def _layout(t: torch.Tensor) -> str:
    if t.is_contiguous():
        return "C"
    assert t.transpose(1, 2).is_contiguous(), t.stride()
    return "T"


def test_op_output_layouts_match_the_real_modules():
    x = torch.randn(2, 5, 3)
    inputs = {"C": x, "T": torch.randn(2, 3, 5).transpose(1, 2)}
    for op in OpType:
        if op == OpType.ZERO:
            continue
        module = build_op(op, 3)
        for t, lay in enumerate(LAYOUTS):
            got = _layout(module(inputs[lay]))
            assert got == ("T" if OP_OUTPUT_T[op][t] else "C"), (op, lay)
    # a node sum keeps the layout of its first operand
    assert _layout(inputs["C"] + inputs["T"]) == "C" and _layout(inputs["T"] + x) == "T"


def test_layout_features_match_what_cell_module_runs():
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark(), features="layout")
    cells = sample_cells(space, 120, seed=7)
    feats = est.cell_features(cells)
    x = torch.randn(2, 5, 3)
    seen_t = 0
    for cell, row in zip(cells, feats, strict=True):
        module = CellModule(cell, 3)
        ran: dict[str, int] = {}

        def hook(mod, inp, out, ran=ran):
            key = f"n_{mod.op.value}@{_layout(inp[0])}"
            ran[key] = ran.get(key, 0) + 1

        for m in module.ops:
            m.register_forward_hook(hook)
        # count node-sum adds by layout agreement, replaying CellModule's order
        nodes = {0: _layout(x)}
        same = mixed = 0
        module(x)
        for src, dst, op in module._edges:
            if op == OpType.ZERO or src not in nodes:
                continue
            y = "T" if OP_OUTPUT_T[op][LAYOUTS.index(nodes[src])] else "C"
            if dst in nodes:
                same += nodes[dst] == y
                mixed += nodes[dst] != y
            else:
                nodes[dst] = y
        want = {c: float(ran.get(c, 0)) for c in est.columns if "@" in c}
        got = {c: row[est.columns.index(c)] for c in want}
        assert got == want, str(cell)
        assert row[est.columns.index("adds_same")] == same, str(cell)
        assert row[est.columns.index("adds_mixed")] == mixed, str(cell)
        seen_t += sum(v for c, v in ran.items() if c.endswith("@T"))
    assert seen_t > 0 and feats[:, est.columns.index("adds_mixed")].sum() > 0


def test_layout_bw_counts_the_edges_backward_reaches():
    """A conv edge runs backward iff its weight gets a gradient: compare with autograd."""
    space = nas.SearchSpace(4, ["conv_3x3", "zero", "skip_connect", "max_pool_3x3"])
    est = LatencyEstimator(nas.dgx_spark(), features="layout_bw", ops=space.ops)
    cells = sample_cells(space, 120, seed=9)
    feats = est.cell_features(cells)
    fwd = [est.columns.index(f"n_conv_3x3@{lay}") for lay in LAYOUTS]
    bwd = [est.columns.index("bw_conv_3x3")]
    x = torch.randn(2, 5, 3)
    unreached = 0
    for cell, row in zip(cells, feats, strict=True):
        module = CellModule(cell, 3)
        out = module(x)
        if out.requires_grad:
            out.sum().backward()
        with_grad = sum(
            1 for m in module.ops if m.op == OpType.CONV_3X3 and m.conv.weight.grad is not None
        )
        assert row[bwd].sum() == with_grad, str(cell)
        unreached += row[fwd].sum() - with_grad
    assert unreached > 0  # some live conv edges never reach the output


def test_layout_grad_counts_the_gradients_autograd_computes():
    """gw_<op>: conv edges whose weights get a gradient; gx_<op>@L: edges through which
    a gradient reaches their input (per input layout); compared with autograd, with a
    per-edge view of the input so that each edge's input gradient is seen alone."""
    space = nas.SearchSpace(4, ["conv_3x3", "zero", "skip_connect", "max_pool_3x3", "avg_pool_3x3"])
    est = LatencyEstimator(nas.dgx_spark(), features="layout_grad", ops=space.ops)
    cells = sample_cells(space, 150, seed=11)
    feats = est.cell_features(cells)
    cols = est.columns
    x = torch.randn(2, 5, 3)
    seen_gx = seen_none = 0
    for cell, row in zip(cells, feats, strict=True):
        module = CellModule(cell, 3)
        got: dict[str, int] = {}

        def pre(mod, inp, got=got):
            v = inp[0].view_as(inp[0])  # keeps the layout, gets a gradient of its own
            if v.requires_grad:
                key = f"gx_{mod.op.value}@{_layout(v)}"
                v.register_hook(lambda g, key=key: got.__setitem__(key, got.get(key, 0) + 1))
            return (v,)

        for m in module.ops:
            m.register_forward_pre_hook(pre)
        out = module(x)
        if out.requires_grad:
            out.sum().backward()
        else:
            seen_none += 1
        gw = sum(
            1 for m in module.ops if m.op == OpType.CONV_3X3 and m.conv.weight.grad is not None
        )
        assert row[cols.index("gw_conv_3x3")] == gw, str(cell)
        want = {c: float(got.get(c, 0)) for c in cols if c.startswith("gx_")}
        assert {c: row[cols.index(c)] for c in want} == want, str(cell)
        seen_gx += sum(got.values())
    assert seen_gx > 0 and seen_none > 0
    # a pool reading the cell input has no backward; a conv reading it has weight grads only
    cell = nas.make_cell(3, [(0, 1, "max_pool_3x3"), (0, 2, "conv_3x3"), (1, 2, "avg_pool_3x3")])
    row = dict(zip(cols, est.cell_features([cell])[0].tolist(), strict=True))
    assert row["gw_conv_3x3"] == 1 and sum(v for c, v in row.items() if c.startswith("gx_")) == 0


def test_layout_grad_counts_gradient_accumulations():
    # node 1 feeds nodes 2 and 3 through convs: its gradient is the sum of two -> 1 add;
    # node 2 feeds node 3 once; the input needs no gradient at all
    cell = nas.make_cell(
        4, [(0, 1, "conv_3x3"), (1, 2, "conv_3x3"), (1, 3, "conv_3x3"), (2, 3, "skip_connect")]
    )
    est = LatencyEstimator(nas.dgx_spark(), features="layout_grad")
    row = dict(zip(est.columns, est.cell_features([cell])[0].tolist(), strict=True))
    assert row["g_accum"] == 1 and row["gw_conv_3x3"] == 3
    assert row["gx_conv_3x3@T"] == 2 and row["gx_skip_connect@T"] == 1


def test_layout_scaled_is_layout_times_shape_aware_seed_times():
    cells = sample_cells(nas.SearchSpace(4), 40, seed=3)
    lay = LatencyEstimator(nas.dgx_spark(), features="layout")
    sc = LatencyEstimator(nas.dgx_spark(), features="layout_scaled")
    for shape in [(2, 8, 4), (16, 64, 128)]:
        costs = nas.op_costs_1d(shape[1], shape[2], batch=shape[0])
        a, b = lay.cell_features(cells, shape=shape), sc.cell_features(cells, shape=shape)
        for k, col in enumerate(lay.columns):
            if col.startswith("n_"):
                op = OpType(col[2:].split("@")[0])
                c = costs[op]
                t = c.flops / (nas.dgx_spark().flops_throughput_gflops * 1e9) + c.mem_bytes / (
                    nas.dgx_spark().mem_bandwidth_gbs * 1e9
                )
                np.testing.assert_allclose(b[:, k], a[:, k] * t, rtol=1e-12)
            else:  # adds: 3 node tensors of memory time each
                add = (
                    3
                    * costs[OpType.SKIP_CONNECT].mem_bytes
                    / (nas.dgx_spark().mem_bandwidth_gbs * 1e9)
                )
                np.testing.assert_allclose(b[:, k], a[:, k] * add, rtol=1e-12)
    # launches: kernels the module dispatches (ReLU + conv, one pool, one add, ...)
    cell = nas.make_cell(3, [(0, 1, "conv_3x3"), (0, 2, "max_pool_3x3"), (1, 2, "skip_connect")])
    assert sc.cell_features([cell])[0, sc.columns.index("launches")] == 2 + 1 + 1


# -- fitting ------------------------------------------------------------------------------
def _synthetic(est, cells, noise, rng, a=1.2, b=0.8, c=5e-6):
    lat = [
        (a * est.compute_time(x) + b * est.memory_time(x) + c) * (1 + noise * rng.standard_normal())
        for x in cells
    ]
    return [CalibrationPoint(x, y) for x, y in zip(cells, lat, strict=True)]


def test_synthetic_recovery_15_points():
    rng = np.random.default_rng(0)
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark())
    train = _synthetic(est, sample_cells(space, 15, seed=1), 0.01, rng)
    test = _synthetic(est, sample_cells(space, 200, seed=2), 0.01, rng)
    est.calibrate(train)
    assert est.calibrated
    assert est.alpha == pytest.approx(1.2, rel=0.05)
    assert est.r_squared(test) >= 0.95
    # noise-free: the exact coefficients come back
    exact = LatencyEstimator(nas.dgx_spark()).calibrate(
        _synthetic(est, sample_cells(space, 15, seed=1), 0.0, rng)
    )
    assert exact.alpha == pytest.approx(1.2, rel=1e-9)
    assert exact.beta == pytest.approx(0.8, rel=1e-7)
    assert exact.bias == pytest.approx(5e-6, rel=1e-6)


def test_lut_recovers_an_additive_table_with_dead_edges():
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark(), features="lut", shape=(4, 8, 16))
    truth = np.array([40e-6, 70e-6, 30e-6, 35e-6, 5e-6, 8e-6, 1e-6, 2e-6])  # 7 ops + launch
    cells = sample_cells(space, 120, seed=5)
    y = est.cell_features(cells) @ truth + 7e-6
    est.calibrate([CalibrationPoint(c, v) for c, v in zip(cells, y, strict=True)])
    np.testing.assert_allclose(est.weights, truth, rtol=1e-7, atol=1e-12)
    assert est.bias == pytest.approx(7e-6, rel=1e-6)


def test_rich_needs_several_shapes():
    space = nas.SearchSpace(4)
    cells = sample_cells(space, 120, seed=6)
    rich = LatencyEstimator(nas.dgx_spark(), features="rich", shape=(4, 8, 16))
    pts = [CalibrationPoint(c, 1e-3 + 1e-5 * k) for k, c in enumerate(cells)]
    w0 = rich.weights
    with pytest.raises(ValueError, match="rank-deficient.*features='lut'"):
        rich.calibrate(pts)
    np.testing.assert_array_equal(rich.weights, w0)  # untouched
    # over several shapes the FLOPs/bytes columns are independent of the counts
    shapes = [(4, 8, 16), (8, 16, 32), (2, 32, 64)]
    pts = [CalibrationPoint(c, 0.0, shapes[k % 3]) for k, c in enumerate(cells)]
    truth = LatencyEstimator(nas.dgx_spark(), features="rich", shape=(4, 8, 16))
    truth._weights = np.r_[np.full(7, 2e-6), 1e-6, 1.3, 0.7]
    y = truth.predict_points(pts)
    rich.calibrate([CalibrationPoint(p.cell, v, p.shape) for p, v in zip(pts, y, strict=True)])
    np.testing.assert_allclose(rich.weights, truth.weights, rtol=1e-6)
    assert (rich.alpha, rich.beta) == (pytest.approx(1.3), pytest.approx(0.7))


def test_relative_weighting():
    """Weighted by 1/latency, the fit recovers exact data too, and on data where one
    model cannot fit every cell it trades absolute error on big cells for relative
    error on small ones."""
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark())
    cells = sample_cells(space, 40, seed=8)
    exact = _synthetic(est, cells, 0.0, np.random.default_rng(0))
    rel = LatencyEstimator(nas.dgx_spark()).calibrate(exact, weighting="relative")
    assert (rel.alpha, rel.beta, rel.bias) == (
        pytest.approx(1.2, rel=1e-9),
        pytest.approx(0.8, rel=1e-7),
        pytest.approx(5e-6, rel=1e-6),
    )
    # a per-cell factor the model cannot express: relative fit -> smaller relative errors
    noisy = [
        CalibrationPoint(p.cell, p.latency * (1.5 if k % 3 == 0 else 1.0))
        for k, p in enumerate(exact)
    ]
    a = LatencyEstimator(nas.dgx_spark()).calibrate(noisy).metrics(noisy)
    r = LatencyEstimator(nas.dgx_spark()).calibrate(noisy, weighting="relative").metrics(noisy)
    assert r["mape"] < a["mape"]
    with pytest.raises(ValueError, match="weighting must be one of"):
        est.calibrate(exact, weighting="log")
    zero = [CalibrationPoint(p.cell, 0.0 if k == 0 else p.latency) for k, p in enumerate(exact)]
    with pytest.raises(ValueError, match="needs latencies > 0, got 0.0"):
        est.calibrate(zero, weighting="relative")


def test_too_few_points():
    est = LatencyEstimator(nas.dgx_spark())
    pts = [CalibrationPoint(ALL_CONV3, 1e-3), CalibrationPoint(nas.SearchSpace(4).cell(9), 2e-3)]
    with pytest.raises(ValueError, match=r"3 coefficients .* at least 3 points, got 2"):
        est.calibrate(pts)
    assert (est.alpha, est.beta, est.bias, est.calibrated) == (1.0, 1.0, 0.0, False)


def test_rank_deficient_design_is_an_error_and_keeps_coefficients():
    est = LatencyEstimator(nas.dgx_spark())
    same = [CalibrationPoint(ALL_CONV3, 1e-3 * (1 + k)) for k in range(5)]
    with pytest.raises(ValueError, match="rank-deficient design"):
        est.calibrate(same)
    # conv_3x3 cells of different sizes: flops and bytes both proportional to the count
    cells = [nas.make_cell(2 + k, [(0, j, "conv_3x3") for j in range(1, 2 + k)]) for k in range(5)]
    with pytest.raises(ValueError, match=r"columns \['flops', 'mem_bytes'"):
        est.calibrate([CalibrationPoint(c, 1e-3) for c in cells])
    no_rate = LatencyEstimator(HWProfile("x", 0.0, 100.0))
    pts = [CalibrationPoint(c, 1e-3 + k) for k, c in enumerate(sample_cells(nas.SearchSpace(4), 9))]
    with pytest.raises(ValueError, match=r"\['flops'\] are zero for every point"):
        no_rate.calibrate(pts)
    assert (est.alpha, est.beta, est.bias) == (1.0, 1.0, 0.0)
    bad = [CalibrationPoint(c, p.latency) for c, p in zip(cells, pts, strict=False)]
    bad[0] = CalibrationPoint(bad[0].cell, float("nan"))
    with pytest.raises(ValueError, match="finite"):
        LatencyEstimator(nas.dgx_spark(), features="lut").calibrate(bad * 3)


def test_constant_targets():
    """Constant latencies fit (zero weights, the constant as bias); their R^2 is NaN.
    run_calibration fits relative errors by default; the CLI test covers it."""
    est = LatencyEstimator(nas.dgx_spark())
    pts = [CalibrationPoint(c, 2e-3) for c in sample_cells(nas.SearchSpace(4), 10)]
    est.calibrate(pts)
    assert est.bias == pytest.approx(2e-3) and abs(est.alpha) < 1e-9
    assert math.isnan(est.r_squared(pts))
    assert math.isnan(nas.r_squared([1.0], [1.0]))


def test_kendall_tau_and_fastest_overlap():
    from itertools import combinations

    from nas.latency import fastest_overlap, kendall_tau

    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    # tau-b against the textbook count on random data with ties
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)
    conc = disc = ty = tp = 0
    for i, j in combinations(range(40), 2):
        s = np.sign(y[i] - y[j]) * np.sign(p[i] - p[j])
        conc += s > 0
        disc += s < 0
        ty += y[i] == y[j]
        tp += p[i] == p[j]
    n0 = 40 * 39 / 2
    assert kendall_tau(y, p) == pytest.approx((conc - disc) / math.sqrt((n0 - ty) * (n0 - tp)))
    # fastest 10% of 20 = the 2 smallest: predicted {0, 5} vs measured {0, 1} -> 1/2
    meas = np.arange(20.0)
    pred = meas.copy()
    pred[1], pred[5] = 50.0, 0.5
    assert fastest_overlap(meas, pred) == 0.5 and fastest_overlap(meas, meas) == 1.0
    assert fastest_overlap([3.0], [1.0]) == 1.0  # at least one cell
    with pytest.raises(ValueError, match="fraction"):
        fastest_overlap(meas, pred, 0.0)
    m = accuracy_metrics(meas, pred)
    assert m["fastest10"] == 0.5 and m["kendall_tau"] == pytest.approx(kendall_tau(meas, pred))


def test_ridge_fits_designs_least_squares_refuses():
    cells = sample_cells(nas.SearchSpace(4, ["conv_3x3", "max_pool_3x3", "zero"]), 60, seed=2)
    est = LatencyEstimator(nas.dgx_spark(), features="lut")  # 7 ops listed, 2 ever occur
    truth = LatencyEstimator(nas.dgx_spark(), features="lut")
    truth._weights = np.array([8e-4 if c == "n_conv_3x3" else 1e-4 for c in truth.columns])
    truth.bias = 2e-5
    lat = truth.estimate_batch(cells)
    pts = [CalibrationPoint(c, float(t)) for c, t in zip(cells, lat, strict=True)]
    with pytest.raises(ValueError, match="are zero for every point"):
        est.calibrate(pts, weighting="relative")
    est.calibrate(pts, weighting="relative", ridge=1e-6)
    cols = est.columns
    unused = [
        k for k, c in enumerate(cols) if c not in ("n_conv_3x3", "n_max_pool_3x3", "launches")
    ]
    assert np.all(est.weights[unused] == 0.0)  # never seen: weight 0, not arbitrary
    assert est.metrics(pts)["mape"] < 1e-3
    with pytest.raises(ValueError, match="ridge must be finite and >= 0"):
        est.calibrate(pts, ridge=-1.0)


def _layout_points(cells, rng, noise=0.01):
    """Latencies from a known layout-dependent truth (avg/max pools cost differently
    on each layout, mixed adds cost extra), with multiplicative noise."""
    truth = LatencyEstimator(nas.dgx_spark(), features="layout")
    w = {"adds_same": 1e-5, "adds_mixed": 6e-5}
    for c in truth.columns:
        if c.startswith("n_"):
            w[c] = (1 + rng.random()) * (8e-4 if "conv" in c else 1e-4)
    w["n_max_pool_3x3@C"] = 9e-4
    truth._weights = np.array([w[c] for c in truth.columns])
    truth.bias = 2e-5
    lat = truth.estimate_batch(cells) * (1 + noise * rng.standard_normal(len(cells)))
    return [CalibrationPoint(c, float(t)) for c, t in zip(cells, lat, strict=True)]


def test_model_choice_is_cross_validated_on_training_cells_only():
    from nas.latency_fit import FitSpec, fit_models

    rng = np.random.default_rng(4)
    cells = sample_cells(nas.SearchSpace(4), 160, seed=4)
    pts = _layout_points(cells, rng)
    train, heldout = pts[:120], pts[120:]
    spec = FitSpec(nas.dgx_spark(), nas.SearchSpace(4).ops, None)
    best, models, ests = fit_models(spec, ["seed", "lut", "layout"], train, heldout)
    assert best == "layout" and list(models) == ["seed", "lut", "layout"]
    assert models["layout"]["cv_within_10pct"] > models["lut"]["cv_within_10pct"]
    assert models["layout"]["within_10pct"] > 0.9 and models["layout"]["kendall_tau"] > 0.9
    # held-out latencies that another model predicts exactly change the held-out scores,
    # never the choice nor the cross-validation figures
    seed_pred = ests["seed"].predict_points(heldout)
    fake = [CalibrationPoint(p.cell, float(t)) for p, t in zip(heldout, seed_pred, strict=True)]
    best2, models2, _ = fit_models(spec, ["seed", "lut", "layout"], train, fake)
    assert best2 == best
    for name in models:
        assert models2[name]["cv_within_10pct"] == models[name]["cv_within_10pct"]
        assert models2[name]["cv_r2"] == models[name]["cv_r2"]
    assert models2["seed"]["within_10pct"] == 1.0 > models2["layout"]["within_10pct"]
    # and the training cells do decide: a truth without layout effects picks a simpler set
    lut_truth = LatencyEstimator(nas.dgx_spark(), features="lut").calibrate(train, ridge=1e-6)
    plain = [CalibrationPoint(p.cell, float(lut_truth.estimate(p.cell))) for p in pts]
    best3, models3, _ = fit_models(spec, ["lut", "layout"], plain[:120], plain[120:])
    assert best3 == "lut" and models3["lut"]["cv_within_10pct"] == 1.0


def test_cross_validation_folds_and_errors():
    from nas.latency_fit import FitSpec, cross_validate, fit_models, fold_ids

    ids = fold_ids(23, 5, seed=1)
    assert sorted(np.bincount(ids).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(ids, fold_ids(23, 5, seed=1))
    with pytest.raises(ValueError, match="folds must lie in"):
        fold_ids(3, 5, seed=0)
    cells = sample_cells(nas.SearchSpace(4), 30, seed=5)
    pts = _layout_points(cells, np.random.default_rng(5))
    spec = FitSpec(nas.dgx_spark(), nas.SearchSpace(4).ops, None)
    # 24 points per fit cannot pin layout_grad's 36 coefficients: that set is left out
    best, models, _ = fit_models(spec, ["lut", "layout_grad"], pts, pts[:5])
    assert best == "lut" and "needs at least" in models["layout_grad"]["error"]
    with pytest.raises(ValueError, match="needs at least"):
        cross_validate(spec, "layout_grad", pts)


def test_r_squared_two_pass_and_negative():
    # a large offset defeats the one-pass sum(y^2) - n mean^2 (y^2 ~ 1e12, ulp ~ 1e-4)
    y = 1e6 + np.array([0.0, 1.0, 2.0, 3.0])
    p = y + np.array([0.125, -0.125, 0.0, 0.125])
    assert nas.r_squared(y, p) == pytest.approx(1 - 3 / 64 / 5.0, rel=1e-12)
    assert nas.r_squared([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="measured has 2 values but predicted has 1"):
        nas.r_squared([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one point"):
        nas.r_squared([], [])
    m = accuracy_metrics([1.0, 2.0, 4.0], [1.05, 2.5, 4.0])
    assert m["within_10pct"] == pytest.approx(2 / 3) and m["mape"] == pytest.approx(0.3 / 3)


# -- persistence --------------------------------------------------------------------------
@pytest.mark.parametrize("features", ["seed", "lut"])
def test_save_load_roundtrip(tmp_path, features):
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.h200(), features=features, shape=(4, 8, 16))
    cells = sample_cells(space, 60, seed=2)
    rng = np.random.default_rng(0)
    est.calibrate([CalibrationPoint(c, 1e-3 + 1e-4 * rng.random()) for c in cells])
    est.save(tmp_path / "est.json")
    back = nas.load_estimator(tmp_path / "est.json")
    assert back.columns == est.columns and back.shape == (4, 8, 16) and back.hw == est.hw
    np.testing.assert_array_equal(back.estimate_batch(cells), est.estimate_batch(cells))
    assert [p.name for p in tmp_path.iterdir()] == ["est.json"]  # no temporary left
    (tmp_path / "bad.json").write_text(json.dumps({"features": "seed"}))
    with pytest.raises(ValueError, match="not a latency estimator document"):
        nas.load_estimator(tmp_path / "bad.json")


# -- expected latency ---------------------------------------------------------------------
@pytest.mark.parametrize("features", ["seed", "lut", "layout"])
def test_expected_latency(features):
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark(), features=features, shape=(4, 8, 16))
    est._weights = np.linspace(1e-6, 5e-6, len(est.columns)) * (1e6 if features == "seed" else 1)
    est.bias = 2e-6
    # all edges live; for "layout", 3 edges read node 0 (@C) and 3 read conv outputs (@T),
    # so the layout-averaged per-op table is exact for this cell (not in general)
    cell = nas.make_cell(4, [(i, j, "sep_conv_5x5") for i, j in space.edges])
    codes = torch.as_tensor(space.codes(cell))
    onehot = torch.full((space.num_edges, space.num_ops), -60.0, dtype=torch.float64)
    onehot[torch.arange(space.num_edges), codes] = 60.0
    assert float(nas.expected_latency(onehot, space, est)) == pytest.approx(est.estimate(cell))
    alpha = torch.zeros(space.num_edges * space.num_ops, requires_grad=True)
    lat = nas.expected_latency(alpha, space, est)  # flat seed layout, uniform mix
    lat.backward()
    assert lat.dim() == 0 and alpha.grad is not None and torch.isfinite(alpha.grad).all()
    per_op = est.feature_table(space.ops) @ est.coeffs()[0]
    grad = alpha.grad.reshape(space.num_edges, space.num_ops)[0].numpy()
    assert np.argmax(grad) == np.argmax(per_op)  # pushing toward costlier ops costs most
    with pytest.raises(ValueError, match=r"num_edges\(6\) \* num_ops\(8\) = 48"):
        nas.expected_latency(torch.zeros(47), space, est)


# -- measurement ---------------------------------------------------------------------------
def test_measure_cells_with_injected_clock():
    ticks = iter(range(10**6))
    cells = sample_cells(nas.SearchSpace(3), 5, seed=0)
    threads = torch.get_num_threads()
    times, info = time_cells(
        cells, "cpu", (2, 4, 8), rounds=4, warmup=1, min_block_s=0.0, threads=1,
        clock=lambda: float(next(ticks)),
    )  # fmt: skip
    # each timed block is exactly one call spanning one tick of the fake clock
    assert times.shape == (5, 4) and np.all(times == 1.0)
    assert info["threads"] == 1 and info["numbers"] == [1] * 5 and info["shape"] == [2, 4, 8]
    assert torch.get_num_threads() == threads  # restored
    ticks2 = iter(range(0, 10**7, 1))
    # a 1-tick probe with min_block_s=10 -> blocks of 10 calls, still 1 tick per call
    pts = measure_cells(
        cells, "cpu", (2, 4, 8), rounds=2, warmup=0, min_block_s=10.0, statistic="p10",
        clock=lambda: float(next(ticks2)),
    )  # fmt: skip
    assert [p.latency for p in pts] == [0.1] * 5 and pts[0].shape == (2, 4, 8)


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_measure_cells_real_tiny(mode):
    cells = sample_cells(nas.SearchSpace(3), 4, seed=1)
    cells.append(nas.make_cell(3, [(0, 1, "zero"), (0, 2, "zero"), (1, 2, "zero")]))
    pts = measure_cells(cells, "cpu", (2, 4, 8), mode, rounds=2, warmup=1, min_block_s=0.0)
    assert len(pts) == 5 and all(p.latency > 0 and math.isfinite(p.latency) for p in pts)
    assert [p.cell for p in pts] == cells


def test_measure_cells_bad_args():
    cells = [ALL_CONV3]
    # non-integer sizes and counts are errors, never truncated or a TypeError
    with pytest.raises(ValueError, match=r"shape must be .* got \(2, 4.5, 8\)"):
        measure_cells(cells, shape=(2, 4.5, 8))
    with pytest.raises(ValueError, match="rounds must be an integer, got 2.5"):
        measure_cells(cells, rounds=2.5)
    with pytest.raises(ValueError, match="threads must be an integer, got '1'"):
        measure_cells(cells, threads="1")
    with pytest.raises(ValueError, match="min_block_s must be finite and >= 0, got nan"):
        measure_cells(cells, min_block_s=float("nan"))
    with pytest.raises(ValueError, match="cells must be an integer, got 2.5"):
        sample_cells(nas.SearchSpace(3), 2.5)
    with pytest.raises(ValueError, match="seed must be an integer, got 1.5"):
        measure_cells(cells, seed=1.5)  # a TypeError from numpy
    with pytest.raises(ValueError, match="mode must be one of"):
        measure_cells(cells, mode="backward")
    with pytest.raises(ValueError, match="shape must be"):
        measure_cells(cells, shape=(2, 0, 8))
    with pytest.raises(ValueError, match="statistic must be"):
        measure_cells(cells, statistic="p200")
    with pytest.raises(ValueError, match="cells is empty"):
        measure_cells([])
    with pytest.raises(ValueError, match="timer must be one of"):
        measure_cells(cells, timer="tsc")
    with pytest.raises(ValueError, match='timer "thread" .* needs threads=1, got 2'):
        measure_cells(cells, timer="thread", threads=2)


def test_thread_timer_runs():
    cells = sample_cells(nas.SearchSpace(3), 3, seed=2)
    pts = measure_cells(
        cells, "cpu", (2, 4, 8), rounds=2, warmup=1, min_block_s=0.0, timer="thread"
    )
    assert all(p.latency >= 0 and math.isfinite(p.latency) for p in pts)


def test_repeatability_and_sampling():
    r = repeatability([1.0, 2.0, 4.0, 8.0], [1.05, 2.0, 5.0, 8.0])
    assert r["within_10pct"] == 0.75 and r["median_abs_pct"] == pytest.approx(0.025)
    space = nas.SearchSpace(3, ["zero", "skip_connect"])
    cells = sample_cells(space, 100)
    assert len(cells) == 8 and len({space.index(c) for c in cells}) == 8
    big = sample_cells(nas.SearchSpace(4), 50, seed=4)
    assert len({nas.SearchSpace(4).index(c) for c in big}) == 50


# -- CLI -----------------------------------------------------------------------------------
def test_cli_calibrate(tmp_path, capsys):
    out = tmp_path / "calib"
    argv = ["calibrate", "--cells", "24", "--nodes", "3", "--shape", "2,4,8", "--rounds", "2"]
    argv += ["--warmup", "1", "--min-block-ms", "0", "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    # 24 sampled cells (18 fitted, 6 held out) + the 2 anchors, always fitted
    assert doc["n_heldout"] == 6 and doc["n_train"] == 20 and doc["threads"] == 1
    assert doc["anchors"] == ["(none)", "0->2:skip_connect"]
    assert doc["best"] in doc["models"] and 0.0 <= doc["within_10pct"] <= 1.0
    assert isinstance(doc["heldout_r2"], float) and doc["repeatability"]["n"] == 26
    assert doc == json.loads((out / "calibration.json").read_text())
    lines = (out / "points.csv").read_text().splitlines()
    assert len(lines) == 27 and lines[0].startswith("row,cell_index,op_codes,shape,latency_s")
    assert [ln.split(",")[6] for ln in lines[1:]].count("anchor") == 2
    assert [ln.split(",")[2] for ln in lines[-2:]] == ["7 7 7", "7 6 7"]  # zero=7, skip=6
    assert (out / "pred_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("points.csv", "calibration.json", "pred_vs_measured.png"):
        assert (out / name).stat().st_mode & 0o777 == file_mode(), name  # not mkstemp's 0600
    assert sorted(p.name for p in out.iterdir()) == [
        "calibration.json",
        "points.csv",
        "pred_vs_measured.png",
    ]  # no temporaries left
    est = nas.load_estimator(out / "calibration.json")
    assert est.features == doc["best"] and est.shape == (2, 4, 8)
    # the table form
    assert main(argv[:-1] + ["--features", "seed", "--repeat", "sequential"]) == 0
    text = capsys.readouterr().out
    assert "seed  held-out R^2" in text and "within +-10%" in text
    assert "repeatability (sequential" in text
    assert main(argv[:-1] + ["--repeat", "none"]) == 0
    assert "repeatability" not in capsys.readouterr().out
    assert main(argv + ["--no-anchors", "--features", "seed"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_train"] == 18 and doc["anchors"] == [] and doc["n_cells"] == 24


def test_cli_calibrate_bad_input(capsys):
    assert main(["calibrate", "--holdout", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "holdout must be a fraction in (0, 1), got 1.5" in err and "Traceback" not in err
    if not torch.cuda.is_available():
        assert main(["calibrate", "--device", "cuda"]) == 2
        assert "torch.cuda.is_available() is False" in capsys.readouterr().err
    assert main(["calibrate", "--device", "tpu9"]) == 2
    assert "device must be cpu or cuda[:N], got 'tpu9'" in capsys.readouterr().err
    assert main(["calibrate", "--shape", "2,4"]) == 2
    assert "--shape must be BATCH,PATCHES,HIDDEN" in capsys.readouterr().err


def test_estimate_range_runs_on_the_scoring_kernel():
    space = nas.SearchSpace(4)
    est = LatencyEstimator(nas.dgx_spark())
    rng = np.random.default_rng(3)
    cells = [space.sample(rng) for _ in range(12)]
    # A calibrated additive model: the kernel must reproduce estimate_batch.
    est.calibrate([CalibrationPoint(c, 1e-4 + est.estimate(c) * 1.7) for c in cells])
    got = est.estimate_range(space, 1000, 4096)
    want = est.estimate_batch(torch.arange(1000, 5096), space)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    coeffs, bias = nas.latency_coeffs(nas.dgx_spark(), est)
    assert coeffs[2] == 0.0 and bias == est.bias
    # The uncalibrated default is the seed formula on the profile's rates.
    c0, b0 = nas.latency_coeffs(nas.dgx_spark())
    assert c0.tolist() == [1 / 1e12, 1 / 2e11, 0.0] and b0 == 0.0


def test_estimate_range_non_additive_decodes_indices():
    space = nas.SearchSpace(3, ["avg_pool_3x3", "skip_connect", "zero"])
    est = LatencyEstimator(nas.dgx_spark(), features="lut", ops=space.ops, shape=(4, 8, 16))
    assert not est.additive
    got = est.estimate_range(space)
    want = np.array([est.estimate(c) for c in space.enumerate()])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="not additive"):
        nas.latency_coeffs(nas.dgx_spark(), est)


def test_estimate_range_checks_its_range():
    # count=-5 was a torch RuntimeError; a range past the space decoded garbage or failed
    space = nas.SearchSpace(3, ["avg_pool_3x3", "skip_connect", "zero"])  # 27 cells
    for est in (
        LatencyEstimator(nas.dgx_spark()),
        LatencyEstimator(nas.dgx_spark(), features="lut", ops=space.ops, shape=(4, 8, 16)),
    ):
        with pytest.raises(ValueError, match="count must be >= 0, got -5"):
            est.estimate_range(space, 0, -5)
        with pytest.raises(ValueError, match="count must be an integer, got 2.5"):
            est.estimate_range(space, 0, 2.5)
        with pytest.raises(ValueError, match="start must be >= 0, got -1"):
            est.estimate_range(space, -1, 2)
        with pytest.raises(ValueError, match=r"start \+ count = 20 \+ 10 = 30 is past .* 27"):
            est.estimate_range(space, 20, 10)
        with pytest.raises(ValueError, match="start is 28, past the space's 27 cells"):
            est.estimate_range(space, 28)
        assert est.estimate_range(space, 27).shape == (0,)
        assert est.estimate_range(space, 25).shape == (2,)
    big = nas.SearchSpace(12, ["skip_connect", "zero"])  # 2**66 cells
    lut = LatencyEstimator(nas.dgx_spark(), features="lut", ops=big.ops, shape=(4, 8, 16))
    with pytest.raises(ValueError, match="indices past int64; the 'lut' model decodes"):
        lut.estimate_range(big, 2**63 - 1, 2)


# -- calibrate: outputs checked first, measurements never lost, big spaces -----------------
_TINY = dict(n_cells=8, holdout=0.25, shapes=[(2, 4, 8)], rounds=2, warmup=0,
             min_block_s=0.0, repeat="none", plot=False)  # fmt: skip


def test_calibrate_checks_out_before_measuring(tmp_path, monkeypatch):
    import nas.calibrate as cal

    def no_timing(*a, **k):
        raise AssertionError("measured before checking --out")

    monkeypatch.setattr(cal, "time_cells", no_timing)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(ValueError, match="cannot write to out folder"):
            cal.run_calibration(nas.SearchSpace(3), out=out, **_TINY)
    assert blocker.read_text() == "x" and sorted(tmp_path.iterdir()) == [blocker]


def test_calibrate_saves_the_measurement_before_fitting(tmp_path, monkeypatch):
    import nas.calibrate as cal

    def failing_fit(self, points, weighting="absolute", ridge=0.0):
        raise ValueError("fit failed")

    monkeypatch.setattr(LatencyEstimator, "calibrate", failing_fit)
    out = tmp_path / "calib"
    with pytest.raises(ValueError, match="no feature set could be fitted"):
        cal.run_calibration(nas.SearchSpace(3), out=out, **_TINY)
    rows = (out / "points.csv").read_text().splitlines()
    assert rows[0] == "row,cell_index,op_codes,shape,latency_s,repeat_s,split"
    # 8 sampled cells + the 2 anchors
    assert len(rows) == 11 and all(float(r.split(",")[4]) > 0 for r in rows[1:])
    assert sorted(p.name for p in out.iterdir()) == ["points.csv"]  # no temporaries


def test_calibrate_spaces_past_int64(tmp_path, capsys):
    # 12 nodes: 8**66 cells, indices past int64 (crashed in sample_cells)
    space = nas.SearchSpace(12)
    cells = sample_cells(space, 3, seed=5)
    assert len({space.index(c) for c in cells}) == 3 and max(map(space.index, cells)) > 2**63
    argv = ["calibrate", "--cells", "6", "--nodes", "12", "--ops", "skip_connect,zero,avg_pool_3x3"]
    argv += ["--shape", "1,4,4", "--rounds", "1", "--warmup", "0", "--min-block-ms", "0"]
    argv += ["--features", "seed", "--repeat", "none", "--out", str(tmp_path), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_cells"] == 6 and doc["space"]["num_nodes"] == 12
    rows = (tmp_path / "points.csv").read_text().splitlines()[1:]
    indices = [int(r.split(",")[1]) for r in rows]
    assert len(indices) == 8 and max(indices) > 2**63  # + the two anchors
    assert [r.split(",")[6] for r in rows[-2:]] == ["anchor", "anchor"]


def test_json_outputs_are_strict(tmp_path, capsys, monkeypatch):
    # Python's json writes NaN/Infinity, which is not JSON: every output must be strict
    import nas.calibrate as cal
    from nas._io import dumps_json

    doc = {"a": float("nan"), "b": [float("inf"), -np.inf], "c": np.float64(1.5), "d": np.int64(2)}
    assert json.loads(dumps_json(doc)) == {"a": None, "b": [None, None], "c": 1.5, "d": 2}
    # equal latencies make the held-out R^2 undefined (NaN): null in every JSON output
    monkeypatch.setattr(cal, "_statistic", lambda times, statistic: np.full(len(times), 1e-3))
    argv = ["calibrate", "--cells", "8", "--nodes", "3", "--shape", "2,4,8", "--rounds", "1"]
    argv += ["--warmup", "0", "--min-block-ms", "0", "--features", "seed", "--fit", "absolute"]
    argv += ["--repeat", "none", "--out", str(tmp_path), "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    file_text = (tmp_path / "calibration.json").read_text()
    for t in (text, file_text):
        assert "NaN" not in t and "Infinity" not in t
        json.loads(t, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert json.loads(text)["heldout_r2"] is None
    # the enumerate command's constraint bounds: +inf is refused up front (one line)
    # rather than printed, and a finite bound is written as a plain number
    assert main(["enumerate", "--nodes", "3", "--top-k", "2", "--max-params", "inf", "--json"]) == 2
    assert "must be a finite number" in capsys.readouterr().err
    assert main(["enumerate", "--nodes", "3", "--top-k", "2", "--max-params", "1e9", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["constraints"]["params"] == [None, 1e9] and "Infinity" not in out


def test_additive_table_sums_match_estimate_batch_to_the_readme_bounds():
    # README: features exact; latencies 1 ulp apart (seed coefficients) or 2 ulps
    # (calibrated); estimate_range within 2 ulps of estimate_batch
    space = nas.SearchSpace(4)
    idx = torch.arange(space.num_cells())
    codes = space.decode(idx).numpy()
    seed = LatencyEstimator(nas.dgx_spark())
    calibrated = LatencyEstimator(nas.dgx_spark())
    cells = [space.sample(s) for s in range(12)]
    calibrated.calibrate([CalibrationPoint(c, 1e-4 + seed.estimate(c) * 1.7) for c in cells])
    for est, bound in ((seed, 1), (calibrated, 2)):
        w, bias = est.coeffs()
        table = est.feature_table(space.ops)
        feats = table[codes].sum(1)
        np.testing.assert_array_equal(feats[:, :2], est.cell_features(idx, space)[:, :2])
        want = est.estimate_batch(idx, space)
        ulp = np.spacing(np.abs(want))
        assert (np.abs(feats @ w + bias - want) <= bound * ulp).all()
        assert (np.abs(est.estimate_range(space) - want) <= 2 * ulp).all()


# -- exact re-ranking ----------------------------------------------------------------
def _random_model(features, rng, space):
    est = LatencyEstimator(nas.cpu_profile(), features=features, ops=space.ops, shape=(4, 16, 8))
    # signed weights of a realistic size per column: bounds must hold for negative ones too
    scale = np.abs(est.weights) + 1e-4
    est._weights = scale * rng.uniform(-0.5, 1.5, len(scale))
    est.bias = 1e-4
    return est


@pytest.mark.parametrize("features", ["seed", "lut", "layout", "layout_grad", "layout_scaled"])
def test_top_k_exact_equals_sorting_every_cell_by_the_full_model(features):
    space = nas.SearchSpace(4, ["conv_3x3", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "zero"])
    table = nas.op_feature_table(space.ops)
    idx = torch.arange(space.num_cells())
    codes = space.decode(idx).numpy()
    rng = np.random.default_rng(21)
    for _ in range(2):
        est = _random_model(features, rng, space)
        full = est.estimate_batch(idx, space)
        bounds, const = est.edge_bounds(space.ops)
        assert np.all(bounds[codes].sum(axis=1) + const <= full + 1e-12)  # a lower bound
        for k, cons in [(10, None), (300, {2: (None, 2 * 64 * 64 * 3)})]:
            res = nas.top_k_exact(space, est, k, table, cons)
            ok = np.ones(len(full), dtype=bool)
            if cons:
                ok = table[codes][:, :, 2].sum(axis=1) <= cons[2][1]
            brute = np.lexsort((idx.numpy(), full))
            brute = brute[ok[brute]][:k]
            # the same k best scores in order (cells tied up to rounding may swap places)
            np.testing.assert_allclose(full[res.indices.numpy()], full[brute], rtol=1e-12)
            np.testing.assert_allclose(res.scores.numpy(), full[brute], rtol=1e-12)
            assert np.all(ok[res.indices.numpy()])
            assert (res.reranked == 0) == (features == "seed") and res.reranked >= k * (
                features != "seed"
            )


def test_top_k_exact_grows_its_candidates_until_proven():
    space = nas.SearchSpace(4, ["conv_3x3", "max_pool_3x3", "skip_connect", "zero"])
    est = _random_model("layout", np.random.default_rng(3), space)
    # a bound that is loose for many cells needs more than the first 256 candidates
    est._weights[est.columns.index("adds_mixed")] = -5e-3
    res = nas.top_k_exact(space, est, 200, nas.op_feature_table(space.ops))
    full = est.estimate_batch(torch.arange(space.num_cells()), space)
    brute = np.lexsort((np.arange(len(full)), full))[:200]
    np.testing.assert_allclose(full[res.indices.numpy()], full[brute], rtol=1e-12)
    assert res.rounds > 1 and res.reranked > 256
    with pytest.raises(ValueError, match="k must be"):
        nas.top_k_exact(space, est, 0, nas.op_feature_table(space.ops))


def test_cli_enumerate_calibration_reranks_exactly(tmp_path, capsys):
    ops = ["conv_3x3", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "zero"]
    space = nas.SearchSpace(4, ops)
    est = _random_model("layout", np.random.default_rng(8), space)
    path = tmp_path / "est.json"
    est.save(path)
    argv = ["enumerate", "--nodes", "4", "--ops", ",".join(ops), "--top-k", "7"]
    assert main([*argv, "--calibration", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    full = est.estimate_batch(torch.arange(space.num_cells()), space)
    # `nas enumerate` ranks the connected cells unless --allow-disconnected
    from nas.ops._reference import enumerate_filter

    idx = np.arange(space.num_cells())
    conn = enumerate_filter(space.num_ops, 4, space.ops.index(nas.OpType.ZERO), idx, True, False)
    got = [r["index"] for r in doc["cells"]]
    assert conn[got].all()
    np.testing.assert_allclose(full[got], np.sort(full[conn])[:7], rtol=1e-12)
    want = np.sort(full[conn])[:7].tolist()
    assert [r["latency_s"] for r in doc["cells"]] == pytest.approx(want)
    assert doc["reranked"] >= 7 and "re-ranked" in doc["method"]
    assert main([*argv, "--calibration", str(path)]) == 0
    assert "re-ranked" in capsys.readouterr().out
    for bad, msg in (("--largest", "drop --largest"), ("--prune-dead", "drop --prune-dead")):
        assert main([*argv, "--calibration", str(path), bad]) != 0
        assert msg in capsys.readouterr().err
    # an additive (seed) model is scanned with its own costs: nothing to re-rank
    seed = LatencyEstimator(nas.cpu_profile(), ops=space.ops, shape=(4, 16, 8))
    seed.save(path)
    assert main([*argv, "--calibration", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reranked"] == 0 and doc["method"] == "exhaustive scan"


def test_too_few_training_points_for_cross_validation(monkeypatch):
    import nas.latency_fit as lf
    from nas.latency_fit import FitSpec, fit_models

    cells = sample_cells(nas.SearchSpace(4), 8, seed=6)
    pts = _layout_points(cells, np.random.default_rng(6))
    spec = FitSpec(nas.dgx_spark(), nas.SearchSpace(4).ops, None)
    # 3 points fit `seed` (3 coefficients) but no 5-fold split leaves 3 to fit on
    best, models, ests = fit_models(spec, ["seed"], pts[:3], pts[3:])
    assert best == "seed" and "seed" in ests  # one set: nothing to choose, no CV needed
    assert np.isnan(models["seed"]["cv_r2"]) and "folds must lie in" in models["seed"]["cv_error"]
    best, models, _ = fit_models(spec, ["seed", "lut"], pts[:3], pts[3:])
    assert best == "seed" and "needs at least" in models["lut"]["error"]

    # two sets that fit but cannot be cross-validated: no basis for a choice
    def no_cv(*args, **kwargs):
        raise ValueError("folds must lie in [2, 3]")

    monkeypatch.setattr(lf, "cross_validate", no_cv)
    with pytest.raises(ValueError, match="too few to cross-validate"):
        fit_models(spec, ["seed", "layout"], pts[:6] * 20, pts[6:])


# -- the timing protocol -------------------------------------------------------------------
def test_timing_protocol_checks_and_replaces():
    from nas.calibrate import TimingProtocol

    p = TimingProtocol()
    assert (p.rounds, p.warm_calls, p.allocator, p.statistic) == (40, 1, "keep", "min")
    q = p.with_(rounds=7, statistic="p10")
    assert (q.rounds, q.statistic, p.rounds) == (7, "p10", 40)  # a copy, p unchanged
    for bad, msg in [
        (dict(warm_calls=-1), "warm_calls must be >= 0"),
        (dict(warm_calls=1.5), "warm_calls must be an integer"),
        (dict(allocator="jemalloc"), "allocator must be one of"),
        (dict(rounds=0), "rounds must be >= 1"),
        (dict(statistic="mean"), "statistic must be"),
    ]:
        with pytest.raises(ValueError, match=msg):
            TimingProtocol(**bad)
    with pytest.raises(TypeError, match="bogus"):
        p.with_(bogus=1)
    with pytest.raises(ValueError, match="protocol must be a TimingProtocol"):
        measure_cells([ALL_CONV3], protocol={"rounds": 2})


def test_warm_calls_run_untimed_before_each_block(monkeypatch):
    import nas.calibrate as cal

    calls = []
    real = cal._make_step

    def counting(module, x, mode):
        step = real(module, x, mode)

        def wrapped():
            calls.append(id(module))
            step()

        return wrapped

    monkeypatch.setattr(cal, "_make_step", counting)
    ticks = iter(range(10**6))
    cells = sample_cells(nas.SearchSpace(3), 2, seed=0)
    times, info = time_cells(
        cells, "cpu", (2, 4, 8), rounds=3, warmup=1, warm_calls=2, min_block_s=0.0,
        allocator="system", clock=lambda: float(next(ticks)),
    )  # fmt: skip
    # the fake clock advances once per clock() call: warm calls are outside the blocks
    assert np.all(times == 1.0) and info["numbers"] == [1, 1]
    # per cell: 1 warm-up + probe (2 warm + 1) + 3 rounds x (2 warm + 1)
    assert sorted(calls.count(c) for c in set(calls)) == [13, 13]
    assert info["protocol"]["warm_calls"] == 2 and info["allocator"] == "system"


_CHURN = """
import resource, sys, torch
import nas
from nas.calibrate import _make_step, keep_freed_memory, sample_cells
from nas.signal_ops import CellModule
torch.set_num_threads(1)
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
x = torch.randn(16, 64, 128)
steps = [_make_step(CellModule(c, 128), x, "forward")
         for c in sample_cells(nas.SearchSpace(4), 2, seed=1)]
for r in range(3):  # the heap grows to its size once
    for s in steps: s()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for r in range(3):
    for s in steps: s()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 6)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="keep_freed_memory sets glibc's mallopt; other C libraries keep their own",
)
def test_keep_freed_memory_stops_page_faults():
    """Two cells called in turn, as the interleaved rounds do: with glibc's defaults
    each call page-faults on its fresh outputs (~1,300 minor faults per call measured
    here); with the memory kept, none. Fresh processes: the setting lasts."""
    import subprocess

    def faults(mode: str) -> tuple[str, float]:
        out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
        return out[0], float(out[1])

    kept, with_keep = faults("keep")
    _, system = faults("system")
    assert kept == "True"
    # kept: no faults in steady state (a one-time heap growth of 0-128 pages can land in
    # the counted rounds: up to 21 per call seen); glibc as it is: 650-1,300 per call
    assert system > 200 and with_keep < min(50, system / 10), (system, with_keep)
    info = time_cells([ALL_CONV3], "cpu", (2, 4, 8), rounds=1, min_block_s=0.0)[1]
    assert info["allocator"].startswith("keep (glibc mallopt")


def test_anchor_cells():
    from nas.calibrate import _anchors_to_add, anchor_cells

    fmt = [nas.format_cell(c) for c in anchor_cells(nas.SearchSpace(4, "signal"))]
    assert fmt == ["(none)", "0->3:skip_connect"]
    assert [nas.format_cell(c) for c in anchor_cells(nas.SearchSpace(2, ["zero"]))] == ["(none)"]
    assert anchor_cells(nas.SearchSpace(4, ["conv_3x3", "skip_connect"])) == []  # no zero op
    space = nas.SearchSpace(3, ["zero", "skip_connect"])
    none, skip = anchor_cells(space)
    a, b = (2, 4, 8), (1, 3, 5)
    # the sample already holds (none) at shape a: only the other three pairs are added
    extra = _anchors_to_add(space, [none, space.cell(1)], [a, b], [a, b])
    assert extra == [(skip, a), (none, b), (skip, b)]
