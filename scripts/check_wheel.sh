#!/usr/bin/env bash
# Build a wheel of nas and prove it installs and imports in a fresh virtualenv.
# Plain `pip wheel .` (with build isolation): CMake falls back to the torch of the
# invoking environment (torch is no build requirement: BUILD-NOTES.md); the fresh venv gets the same
# CPU torch first, then the wheel, then runs the CLI and a native op.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/pip wheel -q --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/nas-*.whl)
python3 -m venv "$work/venv"
torch_version=$(.venv/bin/python -c "import torch; print(torch.__version__.split('+')[0])")
"$work/venv/bin/pip" install -q "torch==$torch_version"
"$work/venv/bin/pip" install -q "$wheel"
cd "$work"
"$work/venv/bin/nas" space --nodes 3 --json >/dev/null
"$work/venv/bin/python" -m nas --version >/dev/null  # nas/__main__.py is in the wheel
"$work/venv/bin/python" -c "
import torch, nas
assert nas.has_native(), nas.build_info()
assert nas.SearchSpace(3).cells(torch.tensor([5]))[0] == nas.SearchSpace(3).cell(5)
print('check_wheel: $(basename "$wheel") installs in a fresh venv, imports, and runs its native ops')
"
