"""The README tells the truth: every ```python block in it runs, and so do the
promises of the scripts it describes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced ```python block, in order."""
    blocks = []
    for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M):
        blocks.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n```bash\nno\n```\n```python\ny = 2\n\nz = 3\n```\n"
    assert python_blocks(text) == [(2, "x = 1\n"), (8, "y = 2\n\nz = 3\n")]
    assert len(BLOCKS) >= 6  # API, mixed op, DARTS, GGUF, enumeration, latency


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_python_block_runs(line, code, tmp_path, monkeypatch):
    # each block alone, in a fresh namespace, in an empty folder (blocks write files)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntaxWarning)
        compiled = compile(code, f"README.md:{line}", "exec")
    exec(compiled, {"__name__": "__readme__"})


def _path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only ``tools`` (links to the real ones): no nvcc."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


@pytest.mark.parametrize("ci, rc, says", [("true", 1, "error: nvcc not found"),
                                          (None, 0, "skipping")])  # fmt: skip
def test_cuda_compile_check_fails_in_ci_without_nvcc(tmp_path, ci, rc, says):
    # "CI compiles every CUDA kernel": without nvcc, CI must fail, not skip silently
    env = {"PATH": _path_with(tmp_path, "dirname"), **({"CI": ci} if ci else {})}
    bash = shutil.which("bash")
    r = subprocess.run([bash, str(ROOT / "scripts/check_cuda_compile.sh")], env=env,
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == rc and says in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert os.access(ROOT / ".ci/run", os.R_OK)
    assert 'export CI="${CI:-true}"' in (ROOT / ".ci/run").read_text()
