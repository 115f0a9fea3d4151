"""nas::decode_cells against its reference, on every device present."""

import pytest
import torch

import nas
from nas.ops import _reference, decode_cells

from .conftest import devices


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("num_ops,num_edges", [(1, 3), (2, 3), (4, 6), (8, 10), (7, 1), (3, 0)])
def test_matches_reference_random(device, num_ops, num_edges):
    g = torch.Generator().manual_seed(num_ops * 100 + num_edges)
    size = num_ops**num_edges
    idx = torch.randint(0, min(size, 2**62), (97,), generator=g, dtype=torch.int64)
    got = decode_cells(idx.to(device), num_ops, num_edges).cpu()
    ref = _reference.decode_cells(idx, num_ops, num_edges)
    assert got.dtype == torch.int64 and got.shape == (97, num_edges)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("device", devices())
def test_matches_python_bijection(device):
    s = nas.SearchSpace(5)
    idx = torch.tensor([0, 1, 7, 8, 12345, s.num_cells() - 1])
    codes = decode_cells(idx.to(device), s.num_ops, s.num_edges).cpu().tolist()
    for i, row in zip(idx.tolist(), codes, strict=True):
        assert row == s.codes(s.cell(i))
    assert s.cells(idx) == [s.cell(i) for i in idx.tolist()]


def test_huge_space_int64_indices():
    # 10 nodes x 8 ops is 2**135 cells: every non-negative int64 is a valid index.
    s = nas.SearchSpace(10)
    idx = torch.tensor([2**63 - 1, 2**40 + 3, 0])
    assert s.cells(idx) == [s.cell(i) for i in idx.tolist()]


def test_non_contiguous_and_empty():
    idx = torch.arange(0, 64, dtype=torch.int64)[::3]
    assert not idx.is_contiguous()
    assert torch.equal(decode_cells(idx, 2, 6), _reference.decode_cells(idx, 2, 6))
    empty = decode_cells(torch.empty(0, dtype=torch.int64), 8, 6)
    assert empty.shape == (0, 6)


@pytest.mark.parametrize("fn", [decode_cells, _reference.decode_cells])
def test_bad_input(fn):
    with pytest.raises(ValueError, match=r"out of range \[0, 2\*\*3\)"):
        fn(torch.tensor([8]), 2, 3)
    with pytest.raises(ValueError, match="out of range"):
        fn(torch.tensor([-1]), 2, 3)
    with pytest.raises(ValueError, match="int64"):
        fn(torch.tensor([1], dtype=torch.int32), 2, 3)
    with pytest.raises(ValueError, match=r"1-D tensor"):
        fn(torch.zeros(2, 2, dtype=torch.int64), 2, 3)
    with pytest.raises(ValueError, match="num_ops must be >= 1"):
        fn(torch.tensor([0]), 0, 3)
    with pytest.raises(ValueError, match="num_edges must be >= 0"):
        fn(torch.tensor([0]), 2, -1)


@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_opcheck():
    for args in [(torch.tensor([0, 5, 63, 17]), 4, 3), (torch.tensor([3]), 2, 2)]:
        torch.library.opcheck(torch.ops.nas.decode_cells.default, args)


@pytest.mark.skipif(not nas.has_native(), reason="nas._C not built")
def test_torch_compile_fullgraph():
    fn = torch.compile(lambda i: torch.ops.nas.decode_cells(i, 8, 6) + 1, fullgraph=True)
    idx = torch.tensor([0, 1, 262143])
    assert torch.equal(fn(idx), _reference.decode_cells(idx, 8, 6) + 1)
