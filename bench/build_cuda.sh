#!/usr/bin/env bash
# Full CUDA build of nas against a CUDA torch, on a machine with no GPU:
# torch 2.14.1 (a CUDA 13.0 build, matching nvcc 13.0) in .venv-cuda, then the
# extension with CPU + CUDA kernels for sm_90 (H200) and sm_121 (DGX Spark GB10).
# Nothing CUDA runs here; this proves the CUDA sources compile and link.
# Usage: bash bench/build_cuda.sh        (set NAS_CUDA_VENV to use another venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NAS_CUDA_VENV:-.venv-cuda}
command -v nvcc >/dev/null || { echo "nvcc not found: cannot build the CUDA kernels" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.14.1 numpy pybind11 scikit-build-core ninja
fi
"$venv/bin/pip" install -q --no-build-isolation --no-deps . \
  --config-settings=build-dir=build/cuda
"$venv/bin/python" - <<'PY'
import torch, nas
info = nas.build_info()
print("build_info:", info)
assert "cuda" in info["backends"], "CUDA backend missing from the build"
for name in nas.native_op_names():
    op = getattr(torch.ops.nas, name).default
    assert torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CUDA"), name
print("CUDA kernels registered for:", ", ".join(nas.native_op_names()))
PY
