"""`nas search` in a subprocess: success on a small CSV, --demo's data, bad input."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import nas

SMALL = [
    "--lookback", "24", "--horizon", "6", "--patch-len", "8", "--stride", "4", "--hidden", "8",
    "--trials", "2", "--search-steps", "6", "--warmup-steps", "2", "--retrain-epochs", "2",
    "--batch-size", "8", "--max-params", "0", "--quiet",
]  # fmt: skip


def _nas(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def _csv(path, n: int = 500) -> str:
    start = datetime.datetime(2024, 1, 1)
    rows = ["date,load,temp"] + [
        f"{start + datetime.timedelta(hours=i):%Y-%m-%d %H:%M:%S},{np.sin(i / 5):.6f},"
        f"{np.cos(i / 9):.6f}"
        for i in range(n)
    ]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_search_writes_a_loadable_model_and_result(tmp_path):
    data = _csv(tmp_path / "s.csv")
    out = tmp_path / "run"
    r = _nas("search", "--data", data, "--out", str(out), *SMALL, "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "test:" in r.stdout and "wrote:" in r.stdout
    doc = json.loads((out / "result.json").read_text())
    assert doc["config"]["seed"] == 3 and len(doc["trials"]) == 2
    assert doc["data"]["columns"] == ["load", "temp"]  # the date column was skipped
    ds = nas.WindowedSeries(data, 24, 6)
    assert doc["test_windows"] == ds.num_windows("test")
    model = nas.load_model(str(out / "model.gguf"))
    x, y = ds.windows("test", np.arange(ds.num_windows("test")))
    with torch.no_grad():
        mse = float((model(x) - y).double().square().mean())
    assert mse == pytest.approx(doc["test_mse"], rel=1e-9)


def test_search_json_is_strict_and_matches_the_file(tmp_path):
    data = _csv(tmp_path / "s.csv")
    r = _nas("search", "--data", data, "--out", str(tmp_path / "o"), *SMALL, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    saved = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["test_mse"] == saved["test_mse"] and doc["files"]["model"].endswith("model.gguf")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "X"], "--data FILE.csv is required"),
        (["--data", "DATA"], "--out DIR is required"),
        (["--data", "nope.csv", "--out", "X"], "data file 'nope.csv' does not exist"),
        (["--data", "DATA", "--out", "X", "--trials", "0"], "num_trials must be at least 1"),
        (["--data", "DATA", "--out", "X", "--columns", "load,x"], "unknown column(s) x"),
        (["--data", "DATA", "--out", "X", "--lookback", "400"], "too few rows for one"),
        (["--data", "DATA", "--out", "X", "--split", "0.5,0.5"], "split must be three"),
        (["--data", "DATA", "--out", "/proc/nas-out"], "cannot write to --out"),
        (["--demo", "--data", "DATA"], "--demo runs on the bundled data"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    data = _csv(tmp_path / "s.csv")
    args = [data if a == "DATA" else str(tmp_path / "o") if a == "X" else a for a in args]
    r = _nas("search", *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_help_has_an_example():
    r = _nas("search", "--help")
    assert r.returncode == 0 and "nas search --demo" in r.stdout
