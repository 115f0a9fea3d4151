"""nas.report: the pictures of a run and the self-contained report.html."""

from __future__ import annotations

import base64
import re

import numpy as np

import nas
from nas.report import plot_cell, write_report


def test_report_has_every_picture_embedded(tmp_path):
    t = np.arange(600)[:, None]
    data = nas.WindowedSeries(np.sin(t / np.array([4.0, 7.0])), 24, 6, 8)
    cfg = nas.SignalSearchConfig(lookback=24, horizon_len=6, patch_len=8, stride=4,
                                 hidden_dim=8, num_trials=2, search_steps=6, warmup_steps=2,
                                 retrain_epochs=2, max_params=0, seed=0)  # fmt: skip
    out = nas.run_signal_nas(cfg, data)
    files = write_report(out, data, tmp_path / "run")
    assert set(files) == {"cell", "alphas", "losses", "forecast", "report"}
    for key in ("cell", "alphas", "losses", "forecast"):
        with open(files[key], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    page = open(files["report"], encoding="utf-8").read()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4  # self-contained: no file references
    assert base64.b64decode(images[0])[:4] == b"\x89PNG"
    assert nas.format_cell(out.arch.cell) in page
    assert page.count("<tr><td>") == 2  # one row per trial
    assert f"{out.test_metrics['mse']:.4f}" in page


def test_plot_cell_of_an_empty_cell(tmp_path):
    plot_cell(nas.make_cell(3, []), str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000
