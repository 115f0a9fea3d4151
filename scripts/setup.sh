#!/usr/bin/env bash
# Create .venv (if absent) and build + install nas into it.
#
# The CPU torch wheel is pinned first (torch==2.13.0): with no torch installed, pip
# would otherwise resolve `torch>=2.11` to a multi-GB CUDA build. To build against a
# CUDA torch instead, set NAS_TORCH (e.g. NAS_TORCH=torch==2.14.1) with nvcc on PATH:
# CUDA kernels are then compiled for sm_90 and sm_121 (see README, "CUDA").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NAS_VENV:-.venv}
torch_req=${NAS_TORCH:-torch==2.13.0}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
# Build requirements first: the build runs without isolation, against this torch.
"$venv/bin/pip" install -q "$torch_req" numpy pybind11 scikit-build-core ninja
"$venv/bin/pip" install -q --no-build-isolation ".[test,dev,data]"
"$venv/bin/python" -c "import nas; i = nas.build_info(); print('nas built:', i['backends'], 'torch', i['torch_version'])"
