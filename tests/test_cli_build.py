import json
import subprocess
import sys
from pathlib import Path

import torch

import nas
from nas.cli import main


def test_space_table(capsys):
    assert main(["space", "--nodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "262,144" in out and "(0,1) (0,2) (0,3) (1,2) (1,3) (2,3)" in out
    assert "conv_3x3" in out and "zero" in out


def test_space_json(capsys):
    assert main(["space", "--nodes", "8", "--ops", "signal", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_cells"] == 4**28 and doc["num_edges"] == 28
    assert doc["ops"] == ["avg_pool_3x3", "max_pool_3x3", "skip_connect", "zero"]


def test_bad_input_is_one_clear_line(capsys):
    assert main(["space", "--nodes", "3", "--ops", "conv_3x3,bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown op 'bogus'" in err and "Traceback" not in err


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-m", "nas.cli", "space", "--nodes", "2", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(r.stdout)["num_cells"] == 8


def _run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_python_dash_m_nas_and_version():
    # `python -m nas` runs the CLI (there was no __main__.py), and --version prints
    # the version of the installed package
    from importlib.metadata import version

    r = _run(sys.executable, "-m", "nas", "space", "--nodes", "2", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["num_cells"] == 8, r.stderr
    r = _run(sys.executable, "-m", "nas", "--version")
    assert r.returncode == 0 and r.stdout == f"nas {nas.__version__}\n", r.stderr
    assert nas.__version__ == version("nas")  # __init__ and pyproject agree
    script = Path(sys.executable).parent / "nas"  # the console script of this env
    if script.exists():
        r = _run(str(script), "--version")
        assert r.returncode == 0 and r.stdout == f"nas {nas.__version__}\n", r.stderr
    r = _run(sys.executable, "-m", "nas")
    assert r.returncode == 2 and "usage: nas" in r.stderr


def test_build_info():
    info = nas.build_info()
    assert info["native"] is True, info  # the test suite runs against a built package
    assert "cpu" in info["backends"]
    assert info["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    if "cuda" in info["backends"]:
        assert "sm_90" in info["cuda_archs"] and "sm_121" in info["cuda_archs"]
    for name in nas.native_op_names():
        assert hasattr(torch.ops.nas, name), name


def test_fallback_warns_once():
    code = (
        "import sys, warnings, torch\n"
        "sys.modules['nas._C'] = None\n"  # make `from . import _C` fail
        "import nas\n"
        "from nas.ops import decode_cells\n"
        "assert not nas.has_native()\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = decode_cells(torch.tensor([5]), 2, 3)\n"
        "    b = decode_cells(torch.tensor([6]), 2, 3)\n"
        "    space = nas.SearchSpace(3, 'signal')\n"  # an enumerate op: registered reference
        "    f, s = nas.score_cells(space, nas.op_feature_table(space.ops), 2)\n"
        "assert a.tolist() == [[1, 0, 1]] and b.tolist() == [[1, 1, 0]]\n"
        "assert tuple(s.shape) == (64,) and f.shape[0] == 64\n"
        "msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]\n"
        "assert len(msgs) == 1 and 'nas._C is not available' in msgs[0], msgs\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


COMMANDS = ["search", "train", "enumerate", "calibrate", "inspect", "space", "info"]


def test_every_subcommand_has_help_with_an_example():
    from nas.cli import _build_parser

    sub = next(a for a in _build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "nas", name, "--help"], capture_output=True,
                           text=True, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        examples = r.stdout.split("examples:\n", 1)[1].splitlines()
        assert examples and all(e.strip().startswith(f"nas {name}") for e in examples if e)
