"""`nas enumerate` over 2 torchrun ranks (gloo, CPU) prints exactly the one-process JSON:
top-k, --largest, constraints, --count, --prune-dead and the --plot Pareto front; and
the merge of shard answers in nas.distributed_enumerate is exact on its own."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas import SearchSpace, latency_coeffs
from nas.costs import hw_profile, op_feature_table
from nas.distributed_enumerate import shard
from nas.enumerate import pareto_front
from nas.space import parse_ops

# 7 ops on 4 nodes: 7**6 = 117,649 cells, an odd count, so the shards differ in size.
OPS = "conv_3x3,conv_5x5,sep_conv_3x3,avg_pool_3x3,max_pool_3x3,skip_connect,zero"
ONE = [sys.executable, "-m", "nas"]
TWO = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
       "-m", "nas"]  # fmt: skip
QUERIES = {
    "fastest": ["--top-k", "25", "--count", "--prune-dead", "--max-params", "30000", "--plot"],
    "largest": ["--top-k", "40", "--largest", "--count", "--max-flops", "2e8",
                "--min-params", "1000"],
}  # fmt: skip


def _run(launcher, query, tmp):
    args = [*launcher, "enumerate", "--nodes", "4", "--ops", OPS, "--json", *QUERIES[query]]
    if args[-1] == "--plot":
        args.append(str(tmp / f"{query}-{len(launcher)}.png"))
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enum-dist")
    return {(q, n): _run(launcher, q, tmp) for q in QUERIES for n, launcher in ((1, ONE), (2, TWO))}


@pytest.mark.parametrize("query", sorted(QUERIES))
def test_two_ranks_print_the_one_process_answer(docs, query):
    one, two = dict(docs[(query, 1)]), dict(docs[(query, 2)])
    assert one.pop("method") == "exhaustive scan"
    assert two.pop("method") == "exhaustive scan over 2 ranks"
    one.pop("plot", None), two.pop("plot", None)
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert len(one["cells"]) == int(QUERIES[query][1])  # enough qualify: the merge is tested
    assert one["qualifying_cells"] > 1000


def test_branch_and_bound_runs_on_rank_0_alone():
    argv = ["enumerate", "--nodes", "6", "--top-k", "5", "--max-params", "50000", "--json"]
    one = subprocess.run([*ONE, *argv], capture_output=True, text=True, timeout=300)
    two = subprocess.run([*TWO, *argv], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert one.stdout == two.stdout  # printed once, by rank 0
    assert json.loads(two.stdout)["method"] == "branch and bound"
    assert "branch and bound does not shard; rank 0 runs it alone, 1 rank(s) idle" in two.stderr


def test_plot_front_is_the_exact_pareto_front(docs):
    doc = docs[("fastest", 1)]
    space = SearchSpace(4, parse_ops(OPS))
    table = op_feature_table(space.ops)
    coeffs, bias = latency_coeffs(hw_profile("dgx_spark"))
    # least latency, most parameters (minimising both, the empty cell alone is the front)
    # over the connected cells, which `nas enumerate` lists by default
    front = pareto_front(space, table, [coeffs, [0, 0, -1]], {2: (None, 30000.0)},
                         prune_dead=True, connected_only=True)  # fmt: skip
    rows = doc["pareto_front"]
    assert [r["index"] for r in rows] == front.indices.tolist()
    assert [r["params"] for r in rows] == (-front.values[:, 1]).tolist()
    assert [r["cells"] for r in rows] == front.counts.tolist()
    np.testing.assert_allclose([r["latency_s"] for r in rows], front.values[:, 0] + bias,
                               rtol=1e-12)  # fmt: skip
    assert len(rows) >= 5 and all(r["params"] <= 30000 for r in rows)
    lat, params = [r["latency_s"] for r in rows], [r["params"] for r in rows]
    assert lat == sorted(lat) and params == sorted(params) and len(set(params)) == len(rows)
    png = open(doc["plot"], "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(doc["plot"])
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 400
    assert doc["plot_sample"] == 3000


@pytest.mark.parametrize("count,size", [(0, 3), (1, 2), (7, 2), (117649, 2), (10, 4), (5, 8)])
def test_shards_tile_the_range_contiguously(count, size):
    start = 11
    pieces = [shard(start, count, r, size) for r in range(size)]
    assert pieces[0][0] == start
    for (a, n), (b, _) in zip(pieces[:-1], pieces[1:], strict=True):
        assert a + n == b
    assert sum(n for _, n in pieces) == count
    assert max(n for _, n in pieces) - min(n for _, n in pieces) <= 1
    with pytest.raises(ValueError, match="rank 2"):
        shard(0, 10, 2, 2)


def test_merge_of_shards_equals_one_scan(monkeypatch):
    """The merge alone, without processes: a fake 3-rank group whose gather hands back
    the three shards' answers (computed here with start/count) gives exactly the
    one-process top-k, Pareto front, count and histogram."""
    import nas.distributed_enumerate as de
    from nas import enumerate as en

    space = SearchSpace(4, parse_ops("conv_3x3,avg_pool_3x3,skip_connect,zero"))
    n = space.num_cells()
    table = op_feature_table(space.ops)
    coeffs, bias = latency_coeffs(hw_profile("h200"))
    cons = {2: (None, 2000.0)}
    cases = (
        (en.top_k_cells, de.top_k_cells, (space, table, coeffs, 7, cons), {"bias": bias}),
        (en.top_k_cells, de.top_k_cells, (space, table, 1, 9, None), {"largest": True}),
        (en.pareto_front, de.pareto_front, (space, table, [coeffs, 2], cons), {}),
        (en.count_cells, de.count_cells, (space, table, cons), {"prune_dead": True}),
        # the cell filters pass through to every shard
        (
            en.top_k_cells,
            de.top_k_cells,
            (space, table, coeffs, 5, cons),
            {"prune_dead": True, "connected_only": True, "distinct": True},
        ),
        (en.count_cells, de.count_cells, (space, table, cons), {"connected_only": True}),
        (en.score_histogram, de.score_histogram, (space, table, coeffs, 13), {}),
    )
    for lib, dist_fn, args, kw in cases:
        want = lib(*args, **kw)
        parts = [_part(lib(*args, **kw, start=a, count=c)) for a, c in
                 (shard(0, n, r, 3) for r in range(3))]  # fmt: skip
        if lib is en.score_histogram:  # the agreed range comes first: two top-1 merges
            lo = en.top_k_cells(space, table, coeffs, 1)
            hi = en.top_k_cells(space, table, coeffs, 1, largest=True)
            rng = (float(lo.scores[0]), float(np.nextafter(float(hi.scores[0]), np.inf)))
            parts = [_part(lib(space, table, coeffs, 13, rng,
                               start=a, count=c)) for a, c in
                     (shard(0, n, r, 3) for r in range(3))]  # fmt: skip
            queue = [[_part(lo)] * 3, [_part(hi)] * 3, parts]
        else:
            queue = [parts]
        monkeypatch.setattr(de, "world", lambda: (0, 3))
        monkeypatch.setattr(de, "_gather", lambda obj, q=queue: q.pop(0))
        got = dist_fn(*args, **kw)
        monkeypatch.undo()
        assert not queue
        for x, y in zip(_fields(want), _fields(got), strict=True):
            assert torch.equal(torch.as_tensor(x), torch.as_tensor(y)), lib.__name__


def _fields(r):
    return [getattr(r, f) for f in r.__dataclass_fields__]


def _part(r):
    """What one rank hands to the gather for its shard's answer."""
    if hasattr(r, "scores"):
        return (r.indices.numpy(), r.scores.numpy(), r.features.numpy())
    if hasattr(r, "values"):
        return (r.values.numpy(), r.indices.numpy(), r.counts.numpy())
    if hasattr(r, "below"):
        return (r.counts.numpy(), r.below, r.above)
    return (r.count, r.distinct)
