import itertools

import numpy as np
import pytest

import nas
from nas import Cell, Edge, OpType, SearchSpace


def test_op_order_and_values():
    assert [op.value for op in nas.all_ops()] == [
        "conv_3x3",
        "conv_5x5",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "avg_pool_3x3",
        "max_pool_3x3",
        "skip_connect",
        "zero",
    ]
    assert OpType("zero") is OpType.ZERO and OpType.ZERO == "zero"
    assert str(OpType.CONV_3X3) == "conv_3x3"


def test_edges_row_major():
    s = SearchSpace(4)
    assert s.edges == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert s.num_edges == 6


def test_default_signal_space():
    s = nas.default_signal_search_space()
    assert s.num_nodes == 4
    assert s.ops == [OpType.AVG_POOL_3X3, OpType.MAX_POOL_3X3, OpType.SKIP_CONNECT, OpType.ZERO]
    assert s.num_cells() == 4**6


def test_num_cells_exact_no_overflow():
    assert SearchSpace(8).num_cells() == 2**84  # the seed wrapped this to 0
    assert SearchSpace(10).num_cells() == 8**45
    assert SearchSpace(5).num_cells() == 1_073_741_824
    assert SearchSpace(3, ["zero"]).num_cells() == 1


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_spaces_have_one_empty_cell(n):
    s = SearchSpace(n)
    assert s.num_edges == 0 and s.num_cells() == 1
    cells = list(s.enumerate())
    assert cells == [Cell(n, ())]
    assert s.cell(0) == Cell(n, ()) and s.index(Cell(n, ())) == 0
    assert not cells[0].is_valid()


def test_enumeration_order_matches_issue_example():
    s = SearchSpace(3, ["conv_3x3", "skip_connect"])
    names = ["".join(str(e.op)[0] for e in c.edges) for c in s.enumerate()]
    assert names == ["ccc", "ccs", "csc", "css", "scc", "scs", "ssc", "sss"]
    for i, c in enumerate(s.enumerate()):
        assert [(e.src, e.dst) for e in c.edges] == [(0, 1), (0, 2), (1, 2)]
        assert s.index(c) == i and s.cell(i) == c


def test_enumerate_is_lazy_and_bounded():
    s = SearchSpace(8)  # 2**84 cells: a list would never finish
    it = s.enumerate()
    first = list(itertools.islice(it, 3))
    assert [s.index(c) for c in first] == [0, 1, 2]
    assert len(list(s.enumerate(max_cells=5))) == 5
    assert list(s.enumerate(max_cells=0)) == []
    assert len(list(SearchSpace(3, ["zero", "conv_3x3"]).enumerate(100))) == 8


def test_enumerate_negative_max_cells():
    with pytest.raises(ValueError, match="max_cells must be >= 0"):
        list(SearchSpace(3).enumerate(-1))


def test_round_trip_random_indices_10_nodes():
    s = SearchSpace(10)
    n = s.num_cells()
    assert n > 2**64
    rng = np.random.default_rng(0)
    for _ in range(200):
        idx = int.from_bytes(rng.bytes(20), "little") % n
        c = s.cell(idx)
        assert c.is_valid()
        c.validate()
        assert s.index(c) == idx
    assert s.index(s.cell(n - 1)) == n - 1
    assert all(e.op == OpType.ZERO for e in s.cell(n - 1).edges)


def test_cell_index_errors():
    s = SearchSpace(3)
    with pytest.raises(ValueError, match=r"index 512 is out of range \[0, 512\)"):
        s.cell(512)
    with pytest.raises(ValueError, match="index must be >= 0"):
        s.cell(-1)
    with pytest.raises(ValueError, match="index must be an integer"):
        s.cell(1.5)
    with pytest.raises(ValueError, match="cell has 4 nodes"):
        s.index(SearchSpace(4).cell(0))
    partial = Cell(3, [Edge(0, 1, "zero"), Edge(0, 2, "zero")])
    with pytest.raises(ValueError, match="no op on edge 1->2"):
        s.index(partial)
    small = SearchSpace(3, ["zero"])
    with pytest.raises(ValueError, match="not in this space"):
        small.index(s.cell(0))


def test_cell_value_semantics():
    a = Cell(3, [Edge(0, 1, OpType.ZERO), Edge(1, 2, "conv_3x3")])
    b = Cell(3, (Edge(0, 1, "zero"), Edge(1, 2, OpType.CONV_3X3)))
    assert a == b and hash(a) == hash(b)
    assert isinstance(a.edges, tuple)
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.num_nodes = 4  # frozen


@pytest.mark.parametrize(
    "cell,ok",
    [
        (Cell(2, [Edge(0, 1, "zero")]), True),
        (Cell(1, []), False),
        (Cell(0, []), False),
        (Cell(3, [Edge(1, 1, "zero")]), False),
        (Cell(3, [Edge(2, 1, "zero")]), False),
        (Cell(3, [Edge(-1, 1, "zero")]), False),
        (Cell(3, [Edge(0, 3, "zero")]), False),
    ],
)
def test_is_valid(cell, ok):
    assert cell.is_valid() is ok


@pytest.mark.parametrize(
    "cell,msg",
    [
        (Cell(1, []), "num_nodes is 1, must be >= 2"),
        (Cell(3, [Edge(-1, 1, "zero")]), "has src < 0"),
        (Cell(3, [Edge(2, 1, "zero")]), "src >= dst"),
        (Cell(3, [Edge(1, 1, "zero")]), "src >= dst"),
        (Cell(3, [Edge(0, 3, "zero")]), "dst >= num_nodes"),
        (Cell(3, [Edge(0, 1, "zero"), Edge(0, 1, "conv_3x3")]), "duplicate edge 0->1"),
        (Cell(3, [Edge(0, 1, "conv_7x7")]), "unknown op 'conv_7x7'"),
    ],
)
def test_validate_messages(cell, msg):
    with pytest.raises(ValueError, match=msg):
        cell.validate()


def test_seed_lets_duplicates_and_unknown_ops_through_is_valid():
    # is_valid keeps the seed's semantics; validate is the strict check.
    assert Cell(3, [Edge(0, 1, "zero"), Edge(0, 1, "zero")]).is_valid()
    assert Cell(3, [Edge(0, 1, "bogus")]).is_valid()


def test_space_construction_errors():
    with pytest.raises(ValueError, match="unknown op 'bogus'"):
        SearchSpace(3, ["bogus"])
    with pytest.raises(ValueError, match="more than once"):
        SearchSpace(3, ["zero", "zero"])
    with pytest.raises(ValueError, match="num_nodes must be >= 0"):
        SearchSpace(-1)
    with pytest.raises(ValueError, match="num_nodes must be an integer"):
        SearchSpace(2.5)


def test_sample_uniform_and_seeded():
    s = SearchSpace(4, ["zero", "skip_connect", "avg_pool_3x3"])
    assert s.sample(123) == s.sample(123)
    assert s.sample(np.random.default_rng(5)) == s.sample(np.random.default_rng(5))
    rng = np.random.default_rng(0)
    counts = np.zeros((s.num_edges, s.num_ops))
    for _ in range(3000):
        for k, code in enumerate(s.codes(s.sample(rng))):
            counts[k, code] += 1
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04)
    # Each edge's op comes from one draw in edge order, exactly as rng.integers does.
    expect = np.random.default_rng(9).integers(0, 3, size=6).tolist()
    assert s.codes(s.sample(9)) == expect


def test_empty_op_list():
    s = SearchSpace(3, [])
    assert s.num_cells() == 0
    assert list(s.enumerate()) == []
    with pytest.raises(ValueError, match="empty op list"):
        s.sample(0)
    with pytest.raises(ValueError, match="empty op list"):
        s.cell(0)


def test_parse_ops():
    assert nas.parse_ops("all") == nas.all_ops()
    assert nas.parse_ops("signal") == nas.default_signal_ops()
    assert nas.parse_ops("conv_3x3, zero") == [OpType.CONV_3X3, OpType.ZERO]
    with pytest.raises(ValueError, match="unknown op"):
        nas.parse_ops("conv_3x3,nope")
    with pytest.raises(ValueError, match="ops must be a str or a sequence of op names, got 3"):
        nas.parse_ops(3)


def test_search_space_reads_a_string_as_an_op_spec():
    # a bare string is a comma-separated op spec, never a list of one-letter ops
    assert SearchSpace(3, "conv_3x3").ops == [OpType.CONV_3X3]
    assert SearchSpace(3, "conv_3x3,zero").ops == [OpType.CONV_3X3, OpType.ZERO]
    assert SearchSpace(3, "signal") == SearchSpace(3, nas.default_signal_ops())
    with pytest.raises(ValueError, match="unknown op 'c'"):
        SearchSpace(3, list("conv_3x3"))  # letters only when the caller asks for them


@pytest.mark.parametrize(
    "cell, match",
    [
        (nas.Cell(3.0, ()), "num_nodes must be an integer, got 3.0"),
        (nas.Cell(3, (Edge(0, 2.0, "zero"),)), r"edge 0 \(0->2.0\) must have integer nodes"),
        (nas.Cell(True, ()), "num_nodes must be an integer, got True"),
    ],
)
def test_cell_validate_needs_integer_nodes(cell, match):
    with pytest.raises(ValueError, match=match):
        cell.validate()
    assert nas.Cell(np.int64(3), (Edge(np.int32(0), 2, "zero"),)).validate() is None


def test_pruned_matches_the_prune_dead_spec():
    # Cell.pruned() zeroes exactly the edges the enumerate kernels treat as dead.
    from nas.ops._reference import enumerate_brute_force

    space = SearchSpace(4, ["conv_3x3", "skip_connect", "zero"])
    table = np.eye(3)  # feature f counts the edges carrying op f
    rows = enumerate_brute_force(space, table, np.zeros(3), 0.0, prune_dead=True)
    for cell, (feats, _, canonical) in zip(space.enumerate(), rows, strict=True):
        p = cell.pruned()
        assert [sum(e.op == op for e in p.edges) for op in space.ops[:2]] == feats[:2]
        assert (p == cell) == canonical
        assert p.pruned() == p


def test_live_nodes():
    c = nas.make_cell(4, [(0, 1, "conv_3x3"), (1, 3, "skip_connect"), (0, 2, "conv_3x3"),
                          (2, 3, "zero"), (0, 3, "zero"), (1, 2, "zero")])  # fmt: skip
    assert c.live_nodes() == {0, 1, 3}
    assert Edge(0, 2, "zero") in c.pruned().edges and Edge(1, 3, "skip_connect") in c.pruned().edges
    dead = nas.make_cell(3, [(0, 1, "conv_3x3"), (1, 2, "zero"), (0, 2, "zero")])
    assert dead.live_nodes() == frozenset()
    assert all(e.op == OpType.ZERO for e in dead.pruned().edges)
