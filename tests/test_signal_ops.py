import math

import pytest
import torch

import nas
from nas import OpType
from nas.signal_ops import CellModule, apply_parameter_free, build_op


def _naive_pool(x, reduce):
    B, N, D = x.shape
    out = torch.empty_like(x)
    for n in range(N):
        win = x[:, max(0, n - 1) : min(N, n + 2)]
        out[:, n] = win.mean(1) if reduce == "avg" else win.amax(1)
    return out


@pytest.mark.parametrize("N", [1, 2, 7, 97])
def test_pools_valid_only(N):
    x = torch.randn(3, N, 5, dtype=torch.float64)
    torch.testing.assert_close(apply_parameter_free("avg_pool_3x3", x), _naive_pool(x, "avg"))
    torch.testing.assert_close(apply_parameter_free("max_pool_3x3", x), _naive_pool(x, "max"))


def test_max_ignores_padding_and_zero_is_exact():
    x = -torch.ones(1, 3, 1) * 5
    assert apply_parameter_free("max_pool_3x3", x).eq(-5).all()  # a zero pad would win
    x = torch.tensor([[[math.inf], [1.0]]])
    z = apply_parameter_free("zero", x)
    assert z.eq(0).all() and not z.isnan().any()
    assert apply_parameter_free("skip_connect", x) is x


def test_param_counts_match_cost_tables():
    D = 12
    params = nas.op_params_1d(D)
    for op in nas.all_ops():
        m = build_op(op, D)
        assert sum(p.numel() for p in m.parameters()) == params[op], op
        x = torch.randn(2, 9, D)
        assert m(x).shape == x.shape


def test_conv_semantics():
    torch.manual_seed(0)
    m = build_op("conv_3x3", 4)
    x = torch.randn(2, 6, 4)
    ref = torch.nn.functional.conv1d(torch.relu(x).transpose(1, 2), m.conv.weight, padding=1)
    torch.testing.assert_close(m(x), ref.transpose(1, 2))


def test_cell_module_matches_hand_computation():
    torch.manual_seed(0)
    cell = nas.make_cell(
        4,
        [
            (0, 1, "avg_pool_3x3"),
            (0, 2, "skip_connect"),
            (1, 2, "max_pool_3x3"),
            (0, 3, "zero"),
            (1, 3, "conv_3x3"),
            (2, 3, "sep_conv_3x3"),
        ],
    )
    m = CellModule(cell, 8)
    x = torch.randn(3, 11, 8)
    ops = {
        (e.src, e.dst): mod
        for e, mod in zip(sorted(cell.edges, key=lambda e: (e.dst, e.src)), m.ops, strict=True)
    }
    n1 = ops[0, 1](x)
    n2 = x + ops[1, 2](n1)
    n3 = ops[1, 3](n1) + ops[2, 3](n2)
    torch.testing.assert_close(m(x), n3)


def test_cell_module_dead_input_paths_give_zero():
    cell = nas.make_cell(3, [(0, 1, "zero"), (0, 2, "zero"), (1, 2, "conv_5x5")])
    x = torch.randn(2, 5, 4)
    assert CellModule(cell, 4)(x).eq(0).all()


def test_errors():
    with pytest.raises(ValueError, match=r"x must be \[B, N, D\]"):
        apply_parameter_free("avg_pool_3x3", torch.zeros(3, 4))
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        build_op(OpType.CONV_3X3, 0)
    with pytest.raises(ValueError, match="duplicate edge"):
        CellModule(nas.make_cell(3, [(0, 1, "zero"), (0, 1, "zero")]), 4)
    with pytest.raises(ValueError, match="has parameters"):
        apply_parameter_free("conv_3x3", torch.zeros(1, 2, 3))


@pytest.mark.parametrize("shape", [(3, 7, 5), (2, 97, 16), (1, 1, 4), (4, 9, 1)])
@pytest.mark.parametrize("op", ["avg_pool_3x3", "max_pool_3x3", "skip_connect"])
def test_parameter_free_modules_match_the_reference_on_both_layouts(shape, op):
    # the modules may change a transposed input's layout for speed (avg_pool copies it
    # to contiguous [B, N, D]); the values must stay the reference's
    b, n, d = shape
    xc = torch.randn(b, n, d)
    xt = xc.transpose(1, 2).contiguous().transpose(1, 2)  # same values, [B, D, N] storage
    module = build_op(op, d)
    for x in (xc, xt):
        torch.testing.assert_close(module(x), apply_parameter_free(op, xc), rtol=1e-6, atol=1e-6)
    if op == "avg_pool_3x3":
        assert module(xt).is_contiguous()
