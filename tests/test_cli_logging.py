"""Messages go through the "nas" logger hierarchy: silent for library users who do not
configure logging, one stderr handler in the CLI (--quiet: warnings only, --verbose:
debug), and progress bars (calibrate's tqdm) on stderr only, off under --quiet."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import nas
from nas import latency_coeffs
from nas.cli import main
from nas.costs import hw_profile, op_feature_table
from nas.enumerate import search_top_k
from nas.log import cli_logging, get_logger

CALIBRATE = ["calibrate", "--cells", "8", "--nodes", "3", "--shape", "2,4,8", "--rounds", "3",
             "--warmup", "1", "--min-block-ms", "0", "--repeat", "none"]  # fmt: skip


def _nas(*args):
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def test_module_loggers_sit_under_nas():
    assert get_logger("nas.search") is logging.getLogger("nas.search")
    assert get_logger("search") is logging.getLogger("nas.search")
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("nas").handlers)


def test_library_call_logs_through_the_nas_logger(caplog):
    space = nas.SearchSpace(4)
    coeffs, bias = latency_coeffs(hw_profile("h200"))
    with caplog.at_level(logging.DEBUG, logger="nas"):
        search_top_k(space, op_feature_table(space.ops), coeffs, 3, bias=bias)
    rec = [r for r in caplog.records if r.name == "nas.enumerate"]
    assert rec and "branch and bound: exact top-3" in rec[0].getMessage()


def test_library_users_see_nothing_unless_they_configure_logging():
    # Without the package's NullHandler, logging's last-resort handler prints warnings.
    code = ("import logging, nas\n"
            "logging.getLogger('nas.search').warning('should not be seen')\n"
            "logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')\n"
            "logging.getLogger('nas.search').info('seen after basicConfig')\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stderr == "nas.search seen after basicConfig\n"


def test_cli_logging_levels_and_restore(capsys):
    log = get_logger("nas.test")
    before = (logging.getLogger("nas").level, logging.getLogger("nas").propagate)
    for kw, shown in (({}, ["info", "warning"]), ({"quiet": True}, ["warning"]),
                      ({"verbose": True}, ["debug", "info", "warning"])):  # fmt: skip
        with cli_logging(**kw):
            log.debug("debug")
            log.info("info")
            log.warning("warning")
        assert capsys.readouterr().err == "".join(f"nas: {m}\n" for m in shown)
    assert (logging.getLogger("nas").level, logging.getLogger("nas").propagate) == before
    log.warning("after")  # the CLI's handler is gone again
    assert capsys.readouterr().err == ""


def test_calibrate_bar_on_stderr_and_quiet_silences_it():
    r = _nas(*CALIBRATE)
    assert r.returncode == 0, r.stderr
    assert "calibrate" in r.stderr and "round" in r.stderr and "3/3" in r.stderr
    assert "calibrated on" in r.stdout and "calibrate:" not in r.stdout
    r = _nas(*CALIBRATE, "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "calibrated on" in r.stdout


def test_json_stdout_stays_strict_with_messages_on_stderr():
    r = _nas("enumerate", "--nodes", "6", "--top-k", "2", "--max-params", "50000", "--json",
             "--verbose")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "nas: branch and bound: exact top-2" in r.stderr
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert doc["method"] == "branch and bound" and len(doc["cells"]) == 2


def test_calibrate_progress_callback_counts_every_round():
    seen = []
    nas.run_calibration(nas.SearchSpace(3, "signal"), n_cells=4, holdout=0.25,
                        shapes=[(2, 4, 8), (2, 5, 8)], rounds=2, warmup=1, min_block_s=0.0,
                        repeat="interleaved", features=["seed"], plot=False,
                        progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen == [(i, 8) for i in range(1, 9)]  # 2 shapes x 2 rounds x 2 (interleaved)


def test_main_leaves_no_handler_behind(capsys):
    n = len(logging.getLogger("nas").handlers)
    assert main(["space", "--nodes", "2", "--quiet"]) == 0
    assert len(logging.getLogger("nas").handlers) == n
    assert "8" in capsys.readouterr().out
