"""Every subcommand run as a user runs it (`python -m nas ...` in a subprocess): --help
with an example, a success, and bad input as one line on stderr with exit 2 and no
traceback. search and train run their successes in test_cli_search.py (a real search is
the slow part); the fast cases of every subcommand are here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_gguf_io import CFG, _arch, _export_bytes, _weights

COMMANDS = ["search", "train", "enumerate", "calibrate", "inspect", "space", "info"]


def _nas(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "m.gguf"
    path.write_bytes(_export_bytes(_arch(), CFG, _weights()))
    return str(path)


@pytest.mark.parametrize(
    "argv, check",
    [
        (["space", "--nodes", "3", "--json"], lambda d: d["num_cells"] == 8**3),
        (["info", "--json"], lambda d: d["native"] is True and "cpu" in d["backends"]),
        (["enumerate", "--nodes", "3", "--top-k", "4", "--count", "--allow-disconnected",
          "--json"], lambda d: len(d["cells"]) == 4 and d["qualifying_cells"] == 8**3),
        (["inspect", "GGUF", "--json"], lambda d: d["architecture"] == "nas"),
        (["calibrate", "--cells", "8", "--nodes", "3", "--shape", "2,4,8", "--rounds", "2",
          "--warmup", "1", "--min-block-ms", "0", "--repeat", "none", "--json"],
         lambda d: d["n_train"] + d["n_heldout"] == 8 + 2 and d["best"] in d["models"]),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)  # fmt: skip
def test_success_prints_strict_json(argv, check, gguf):
    r = _nas(*[gguf if a == "GGUF" else a for a in argv])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert check(doc)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["space", "--nodes", "3", "--ops", "conv_3x3,bogus"], "unknown op 'bogus'"),
        (["info", "--bogus"], "unrecognized arguments: --bogus"),
        (["enumerate", "--nodes", "3", "--plot-sample", "0", "--plot", "x.png"],
         "--plot-sample must be >= 1"),
        (["enumerate", "--nodes", "3", "--plot", "/proc/nas/x.png"], "cannot write to --plot"),
        (["enumerate", "--nodes", "7", "--plot", "x.png"], "--plot needs the exact Pareto"),
        (["inspect", "missing.gguf"], "cannot read 'missing.gguf'"),
        (["calibrate", "--holdout", "1.5"], "holdout must be a fraction"),
        (["calibrate", "--shape", "2,4"], "--shape must be BATCH,PATCHES,HIDDEN"),
        (["search", "--out", "o"], "--data FILE.csv is required"),
        (["train", "--cell", "0->1:conv_9x9", "--demo", "--out", "o"], "unknown op 'conv_9x9'"),
        (["train", "--demo"], "the following arguments are required: --cell"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path):
    r = _nas(*argv, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith(("usage:", "  "))]
    assert len(lines) == 1, r.stderr  # argparse's own errors add only the usage lines
    assert r.stdout == ""


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_quiet_verbose_and_an_example(name):
    r = _nas(name, "--help")
    assert r.returncode == 0, r.stderr
    assert "--quiet" in r.stdout and "--verbose" in r.stdout
    assert f"\n  nas {name} " in r.stdout.split("examples:", 1)[1]
