"""torchrun with 2 processes on gloo: trials spread over ranks equal the one-process run
exactly; data-parallel equals it within float tolerance."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

SMALL = [
    "--lookback", "24", "--horizon", "6", "--patch-len", "8", "--stride", "4", "--hidden", "8",
    "--trials", "3", "--search-steps", "30", "--warmup-steps", "5", "--retrain-epochs", "2",
    "--batch-size", "8", "--max-params", "0", "--threads", "1", "--dropout", "0", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    t = np.arange(700)
    csv = tmp / "s.csv"
    csv.write_text("a,b\n" + "".join(
        f"{np.sin(i / 5):.6f},{np.cos(i / 9) + 0.1 * np.sin(i):.6f}\n" for i in t))  # fmt: skip
    out = {}
    for name, launcher, extra in (
        ("single", [sys.executable, "-m", "nas"], []),
        ("trials", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", "-m", "nas"], ["--parallel", "trials"]),
        ("data", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  "--nproc_per_node=2", "-m", "nas"], ["--parallel", "data"]),
    ):  # fmt: skip
        folder = tmp / name
        r = subprocess.run(
            [*launcher, "search", "--data", str(csv), "--out", str(folder), *SMALL, *extra],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = json.loads((folder / "result.json").read_text())
        out[name]["folder"] = folder
    return out


def test_trials_over_two_ranks_equal_one_process_exactly(runs):
    a, b = runs["single"], runs["trials"]
    assert [t["trial"] for t in b["trials"]] == [0, 1, 2]
    for x, y in zip(a["trials"], b["trials"], strict=True):
        assert (x["seed"], x["final_loss"], x["alpha"], x["cell"]) == (
            y["seed"], y["final_loss"], y["alpha"], y["cell"])  # fmt: skip
    assert (a["test_mse"], a["cell_text"]) == (b["test_mse"], b["cell_text"])
    # rank 0 alone wrote the run's files; each rank kept its own checkpoint
    assert (b["folder"] / "model.gguf").exists()
    assert sorted(p.name for p in b["folder"].glob("checkpoint*.pt")) == [
        "checkpoint.rank0-of-2.pt", "checkpoint.rank1-of-2.pt"]  # fmt: skip


def test_data_parallel_equals_one_process_within_float_tolerance(runs):
    a, b = runs["single"], runs["data"]
    for x, y in zip(a["trials"], b["trials"], strict=True):
        assert y["final_loss"] == pytest.approx(x["final_loss"], rel=1e-5)
        np.testing.assert_allclose(np.array(y["alpha"]), np.array(x["alpha"]), atol=1e-5)
        assert x["cell"] == y["cell"]
    assert b["test_mse"] == pytest.approx(a["test_mse"], rel=1e-5)
