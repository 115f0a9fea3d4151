"""The batched DARTSCell (one Conv1d per node, folded kernels) against the per-edge
cell: outputs and every gradient (x, alpha, each weight), float64, for every op subset
and several node counts. See DARTSCell's docstring for what batching changes."""

import itertools

import pytest
import torch

import nas
from nas import DARTSCell, DARTSOptimizer, SearchSpace, SuperNet

from .test_darts import _cell_reference as _per_edge_reference

ALL = [op.value for op in nas.all_ops()]

pytestmark = pytest.mark.filterwarnings("ignore:nas._C:RuntimeWarning")


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: a second intra-op thread only adds barrier waits (30x
    slower when the machine is loaded)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _outputs_and_grads(fn, cell, x, alpha, g):
    x = x.detach().requires_grad_()
    alpha = alpha.detach().requires_grad_()
    y = fn(x, alpha)
    grads = torch.autograd.grad((y * g).sum(), [x, alpha, *cell.parameters()])
    return [y.detach(), *grads]


def _assert_batched_matches(cell, x, alpha, reference, label):
    g = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(3))
    assert cell.batched
    got = _outputs_and_grads(cell, cell, x, alpha, g)
    want = _outputs_and_grads(lambda a, b: reference(cell, a, b), cell, x, alpha, g)
    names = ["y", "x.grad", "alpha.grad"] + [f"{n}.grad" for n, _ in cell.named_parameters()]
    assert len(got) == len(want) == len(names)
    for name, a, b in zip(names, got, want, strict=True):
        torch.testing.assert_close(a, b, msg=lambda m, name=name: f"{label} {name}: {m}")


def _random_cell(num_nodes, ops, hidden=3, seed=0):
    torch.manual_seed(seed)
    cell = DARTSCell(SearchSpace(num_nodes, ops), hidden).double()
    gen = torch.Generator().manual_seed(seed + 1)
    alpha = torch.randn(cell.space.num_edges, len(ops), dtype=torch.float64, generator=gen)
    return cell, alpha


SUBSETS = [s for r in range(2, 9) for s in itertools.combinations(ALL, r)]


def test_every_op_subset_3_nodes_matches_the_per_edge_reference():
    assert len(SUBSETS) == 247  # every subset the cell accepts (>= 2 ops)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    for k, ops in enumerate(SUBSETS):
        cell, alpha = _random_cell(3, ops, seed=k)
        _assert_batched_matches(cell, x, alpha, _per_edge_reference, str(ops))


@pytest.mark.parametrize("num_nodes", [2, 4, 5])
def test_node_counts_match_the_per_edge_reference(num_nodes):
    gen = torch.Generator().manual_seed(num_nodes)
    subsets = [tuple(ALL), ("conv_3x3", "zero"), ("sep_conv_5x5", "skip_connect")]
    subsets += [SUBSETS[int(i)] for i in torch.randint(len(SUBSETS), (6,), generator=gen)]
    subsets += [tuple(ALL[int(i)] for i in torch.randperm(8, generator=gen)[:r]) for r in (3, 8)]
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    for k, ops in enumerate(subsets):
        cell, alpha = _random_cell(num_nodes, ops, seed=100 * num_nodes + k)
        _assert_batched_matches(cell, x, alpha, _per_edge_reference, f"{num_nodes} nodes {ops}")


def test_batched_equals_batched_false_on_odd_shapes_and_strides():
    cell, alpha = _random_cell(4, ALL, hidden=5, seed=7)

    def per_edge(c, x, a):
        c.batched = False
        try:
            return c(x, a)
        finally:
            c.batched = True

    for x in (
        torch.randn(1, 1, 5, dtype=torch.float64),
        torch.randn(3, 97, 5, dtype=torch.float64),
        torch.randn(3, 5, 11, dtype=torch.float64).transpose(1, 2)[:, ::2],  # strided
        torch.randn(0, 4, 5, dtype=torch.float64),
    ):
        _assert_batched_matches(cell, x, alpha, per_edge, f"x {tuple(x.shape)} {x.stride()}")


def test_float32_within_float_tolerance():
    torch.manual_seed(5)
    cell = DARTSCell(SearchSpace(4), 16)
    alpha = torch.randn(6, 8)
    x = torch.randn(8, 42, 16)
    _assert_batched_matches(cell, x, alpha, _per_edge_reference, "float32")


@pytest.mark.parametrize("batched", [True, False])
def test_x_must_be_3d_either_way(batched):
    cell = DARTSCell(SearchSpace(3), 4, batched=batched)
    with pytest.raises(ValueError, match=r"x must be a 3-D tensor \[B, N, D\], got shape \(5, 4\)"):
        cell(torch.randn(5, 4), torch.zeros(3, 8))


def test_same_parameters_and_state_dict_either_way():
    torch.manual_seed(6)
    a, b = DARTSCell(SearchSpace(3), 4), DARTSCell(SearchSpace(3), 4, batched=False)
    assert a.batched and not b.batched
    assert list(a.state_dict()) == list(b.state_dict())
    b.load_state_dict(a.state_dict())
    x, alpha = torch.randn(2, 5, 4), torch.randn(3, 8)
    torch.testing.assert_close(a(x, alpha), b(x, alpha))


def test_search_steps_agree_with_the_per_edge_supernet():
    """Three second-order Adam steps (weights and alpha) from the same start."""
    torch.manual_seed(8)
    space = SearchSpace(3)
    nets = [SuperNet(space, 4, num_layers=2).double() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    for cell in nets[1].cells:
        cell.batched = False
    opts = [DARTSOptimizer(n, 0.05, 3e-2, order="second", alpha_optimizer="adam") for n in nets]
    data = [torch.randn(3, 9, 4, dtype=torch.float64) for _ in range(4)]
    for _ in range(3):
        res = [o.step(*data) for o in opts]
        assert res[0] == pytest.approx(res[1], rel=1e-9)
    for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=lambda m, name=name: f"{name}: {m}")


def test_batched_cell_compiles_fullgraph():
    cell, alpha = _random_cell(4, ALL, hidden=4, seed=9)
    x = torch.randn(2, 7, 4, dtype=torch.float64)
    compiled = torch.compile(cell, fullgraph=True)
    _assert_batched_matches(cell, x, alpha, lambda c, a, b: compiled(a, b), "compiled")
