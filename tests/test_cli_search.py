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


def test_search_writes_pictures_report_and_checkpoint(tmp_path):
    data = _csv(tmp_path / "s.csv")
    out = tmp_path / "run"
    r = _nas("search", "--data", data, "--out", str(out), *SMALL)
    assert r.returncode == 0, r.stderr
    for name in ("cell.png", "alphas.png", "losses.png", "forecast.png", "report.html",
                 "checkpoint.pt", "run.json"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name


def test_train_a_given_cell(tmp_path):
    data = _csv(tmp_path / "s.csv")
    out = tmp_path / "cell"
    small = ["--lookback", "24", "--horizon", "6", "--patch-len", "8", "--stride", "4",
             "--hidden", "8", "--retrain-epochs", "2", "--batch-size", "8", "--quiet"]  # fmt: skip
    r = _nas("train", "--cell", "0->1:max_pool_3x3, 1->2:skip_connect", "--data", data,
             "--out", str(out), *small, "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cell_text"] == "0->1:max_pool_3x3,1->2:skip_connect"
    assert doc["trials"] == [] and doc["test_windows"] > 0
    model = nas.load_model(str(out / "model.gguf"))
    assert nas.format_cell(model.backbone.cell) == doc["cell_text"]
    assert (out / "report.html").exists() and not (out / "alphas.png").exists()
    bad = _nas("train", "--cell", "0->1:conv_9x9", "--data", data, "--out", str(out))
    assert bad.returncode == 2 and "unknown op 'conv_9x9'" in bad.stderr
    bad = _nas("train", "--cell", "1->1:zero", "--data", data, "--out", str(out))
    assert bad.returncode == 2 and "src >= dst" in bad.stderr


@pytest.mark.parametrize(
    "text, nodes, expect",
    [
        ("0->1:conv_3x3,0->2:skip_connect,1->2:avg_pool_3x3", None, 3),
        (" 0->3:zero ", None, 4),
        ("(none)", 4, 4),
        ("Cell(3 nodes: 0->1:conv_3x3, 1->2:zero)", None, 3),
    ],
)
def test_cells_print_and_parse_in_one_form(text, nodes, expect):
    cell = nas.parse_cell(text, nodes)
    assert cell.num_nodes == expect
    again = nas.parse_cell(nas.format_cell(cell), cell.num_nodes)
    assert nas.format_cell(again) == nas.format_cell(cell)
    with pytest.raises(ValueError, match="is not SRC->DST:OP"):
        nas.parse_cell("0-1:conv_3x3")
