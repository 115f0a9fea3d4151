import numpy as np
import pytest

import nas
from nas import OpCost, OpType

SEED = {
    "conv_3x3": (75_497_472, 671_744, 36_864),
    "conv_5x5": (209_715_200, 933_888, 102_400),
    "sep_conv_3x3": (9_568_256, 805_120, 4_672),
    "sep_conv_5x5": (11_665_408, 809_216, 5_696),
    "avg_pool_3x3": (589_824, 524_288, 0),
    "max_pool_3x3": (589_824, 524_288, 0),
    "skip_connect": (0, 262_144, 0),
    "zero": (0, 0, 0),
}


def test_seed_tables_exact():
    costs, params = nas.default_op_costs(), nas.default_op_params()
    assert set(costs) == set(OpType) == set(params)
    for name, (flops, mem, p) in SEED.items():
        op = OpType(name)
        assert costs[op] == OpCost(flops, mem), name
        assert params[op] == p, name


def test_1d_formulas():
    L, C, B, b = 42, 16, 3, 4
    c, p = nas.op_costs_1d(L, C, batch=B, dtype_bytes=b), nas.op_params_1d(C)
    act = B * L * C * b
    assert p[OpType.CONV_3X3] == 3 * C * C and p[OpType.CONV_5X5] == 5 * C * C
    assert p[OpType.SEP_CONV_3X3] == 3 * C + C * C and p[OpType.SEP_CONV_5X5] == 5 * C + C * C
    assert c[OpType.CONV_5X5] == OpCost(2 * B * L * 5 * C * C, 2 * act + 5 * C * C * b)
    assert c[OpType.SEP_CONV_3X3] == OpCost(
        2 * B * L * (3 * C + C * C), 3 * act + (3 * C + C * C) * b
    )
    assert c[OpType.MAX_POOL_3X3] == OpCost(B * L * C * 3, 2 * act)
    assert c[OpType.SKIP_CONNECT] == OpCost(0, act) and c[OpType.ZERO] == OpCost(0, 0)
    # 1-D at batch=1 scales linearly with length
    assert (
        nas.op_costs_1d(84, C)[OpType.CONV_3X3].flops
        == 2 * nas.op_costs_1d(42, C)[OpType.CONV_3X3].flops
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(length=0, channels=4),
        dict(length=4, channels=-1),
        dict(length=4, channels=4, batch=0),
        dict(length=2.5, channels=4),
    ],
)
def test_1d_bad_args(kw):
    with pytest.raises(ValueError, match="must be a positive integer"):
        nas.op_costs_1d(**kw)


def test_cell_cost_and_params():
    cell = nas.make_cell(3, [(0, 1, "conv_3x3"), (0, 2, "skip_connect"), (1, 2, "zero")])
    assert nas.cell_params(cell) == 36_864
    assert nas.cell_cost(cell) == OpCost(75_497_472, 671_744 + 262_144)


def test_unknown_ops_are_errors_not_free():
    bad = nas.make_cell(2, [(0, 1, "conv_9x9")])
    with pytest.raises(ValueError, match="unknown op 'conv_9x9'"):
        nas.cell_cost(bad)
    with pytest.raises(ValueError, match="unknown op"):
        nas.cell_params(bad)
    partial = {OpType.ZERO: OpCost(0, 0)}
    with pytest.raises(ValueError, match="no entry for op 'conv_3x3'"):
        nas.op_cost("conv_3x3", partial)


def test_feature_table():
    t = nas.op_feature_table(["conv_3x3", "zero"])
    assert t.shape == (2, 3) and t.dtype == np.float64
    np.testing.assert_array_equal(t[0], [75_497_472, 671_744, 36_864])
    np.testing.assert_array_equal(t[1], [0, 0, 0])
    assert nas.FEATURE_NAMES == ("flops", "mem_bytes", "params")


def test_hw_profiles():
    s = nas.dgx_spark()
    assert (s.name, s.flops_throughput_gflops, s.mem_bandwidth_gbs) == (
        "DGX Spark GB10",
        1000.0,
        200.0,
    )
    h = nas.h200()
    assert h.flops_throughput_gflops == 67_000.0 and h.mem_bandwidth_gbs == 4_800.0
    assert nas.hw_profile("h200") == h
    with pytest.raises(ValueError, match="unknown hardware profile 'tpu'"):
        nas.hw_profile("tpu")
