"""Checkpoints and resume: `nas search --resume` ends as an uninterrupted run would."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import nas

SMALL = [
    "--lookback", "24", "--horizon", "6", "--patch-len", "8", "--stride", "4", "--hidden", "8",
    "--trials", "3", "--search-steps", "60", "--warmup-steps", "10", "--retrain-epochs", "2",
    "--batch-size", "8", "--max-params", "0", "--threads", "1", "--checkpoint-every", "7",
    "--quiet", "--json",
]  # fmt: skip


def _csv(path) -> str:
    t = np.arange(700)
    rows = ["a,b"] + [f"{np.sin(i / 5):.6f},{np.cos(i / 9) + 0.1 * np.sin(i):.6f}" for i in t]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas", "search", *args]


def _essence(folder) -> dict:
    doc = json.loads((folder / "result.json").read_text())
    return {
        "trials": [
            (t["trial"], t["seed"], t["final_loss"], t["alpha"], t["cell"]) for t in doc["trials"]
        ],  # fmt: skip
        "test": (doc["test_mse"], doc["test_mae"], doc["cell_text"], doc["params"]),
    }


def test_killed_at_random_points_and_resumed_equals_an_uninterrupted_run(tmp_path):
    data = _csv(tmp_path / "s.csv")
    ref = tmp_path / "ref"
    r = subprocess.run(_cmd("--data", data, "--out", str(ref), *SMALL), capture_output=True,
                       text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    rng = random.Random(1234)
    kills = 0
    for attempt in range(8):
        args = (
            _cmd("--data", data, "--out", str(run), *SMALL)
            if attempt == 0
            else _cmd("--resume", str(run), "--quiet", "--json")
        )
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if attempt < 5:  # the first five are killed somewhere (if still running)
            time.sleep(rng.uniform(3.0, 9.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        out, err = proc.communicate()
        if proc.returncode == 0 and attempt >= 5:
            break
    assert proc.returncode == 0, err
    assert kills >= 1, "no attempt was interrupted: lengthen the run"
    assert _essence(run) == _essence(ref)
    doc = json.loads((run / "result.json").read_text())
    assert [t["trial"] for t in doc["trials"]] == [0, 1, 2]  # nothing lost or repeated
    a = nas.load_tensors(str(run / "model.gguf"))
    b = nas.load_tensors(str(ref / "model.gguf"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (run / "model.gguf").read_bytes() == (ref / "model.gguf").read_bytes()


def _cfg(**kw) -> nas.SignalSearchConfig:
    base = dict(lookback=24, horizon_len=6, patch_len=8, stride=4, hidden_dim=8,
                num_trials=2, search_steps=20, warmup_steps=4, retrain_epochs=1,
                max_params=0, seed=0)  # fmt: skip
    base.update(kw)
    return nas.SignalSearchConfig(**base)


def _data() -> nas.WindowedSeries:
    t = np.arange(600)[:, None]
    return nas.WindowedSeries(np.sin(t / np.array([4.0, 7.0])), 24, 6, 8)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("trial, step", [(0, 3), (0, 13), (1, 1), (1, 20)])
def test_resume_in_process_is_bitwise(tmp_path, trial, step, caplog):
    ref = nas.run_signal_nas(_cfg(), _data())

    def stop(ev):
        if ev["event"] == "step" and ev["trial"] == trial and ev["step"] == step:
            raise _Stop

    with pytest.raises(_Stop):
        nas.run_signal_nas(_cfg(), _data(), checkpoint=tmp_path, checkpoint_every=5,
                           progress=stop)  # fmt: skip
    with caplog.at_level("INFO", logger="nas"):
        out = nas.run_signal_nas(_cfg(), _data(), checkpoint=tmp_path, checkpoint_every=5,
                                 resume=True)  # fmt: skip
    saved = (step - 1) // 5 * 5  # the last checkpoint before the stop (0: none this trial)
    said = [r.getMessage() for r in caplog.records if r.name == "nas.search"]
    where = f", trial {trial} from step {saved}" if saved else ""
    resumed = [f"resuming {tmp_path}: {trial} finished trial(s){where}"]
    assert said == (resumed if trial or saved else [])  # nothing saved: a fresh start
    for a, b in zip(ref.all_results, out.all_results, strict=True):
        assert a.final_loss == b.final_loss and np.array_equal(a.alpha, b.alpha)
        assert a.history == b.history
    sa, sb = ref.model.state_dict(), out.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_of_another_config_or_corrupt_is_a_clear_error(tmp_path):
    nas.run_signal_nas(_cfg(num_trials=1), _data(), checkpoint=tmp_path)
    with pytest.raises(ValueError, match="made with another config"):
        nas.run_signal_nas(_cfg(num_trials=1, seed=5), _data(), checkpoint=tmp_path, resume=True)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="is corrupt"):
        nas.run_signal_nas(_cfg(num_trials=1), _data(), checkpoint=tmp_path, resume=True)
    torch.save({"nas_checkpoint": 99}, path)
    with pytest.raises(ValueError, match="has format 99; this nas reads format 1"):
        nas.run_signal_nas(_cfg(num_trials=1), _data(), checkpoint=tmp_path, resume=True)


def test_resume_cli_errors(tmp_path):
    r = subprocess.run(_cmd("--resume", str(tmp_path)), capture_output=True, text=True)
    assert r.returncode == 2 and "no run.json (not a nas search run folder)" in r.stderr
    (tmp_path / "run.json").write_text('{"nas_run": 7}')
    r = subprocess.run(_cmd("--resume", str(tmp_path)), capture_output=True, text=True)
    assert r.returncode == 2 and "from another nas version" in r.stderr
    (tmp_path / "run.json").write_text('{"nas_run": 1, "options": {}}')
    r = subprocess.run(_cmd("--resume", str(tmp_path), "--seed", "3"), capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 2 and "drop seed" in r.stderr
    assert "Traceback" not in r.stderr and os.path.isdir(tmp_path)
