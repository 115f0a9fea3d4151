#!/usr/bin/env bash
# Compile every CUDA kernel file (csrc/cuda/*.cu) with nvcc alone, for sm_90 (H200)
# and sm_121 (DGX Spark GB10). The kernels use raw pointers and the CUDA runtime only,
# so no torch is needed; this is CI's proof that the CUDA sources compile.
# The full build, with the torch registration files, is bench/build_cuda.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null; then
  # CI promises that every CUDA kernel compiles: there a missing nvcc is a failure,
  # not a silent skip. Elsewhere (a laptop without CUDA) skip, and say so.
  if [ "${CI:-}" = "true" ]; then
    echo "check_cuda_compile: error: nvcc not found on PATH and CI=true; install the CUDA toolkit (nvcc) so CI can compile every CUDA kernel" >&2
    exit 1
  fi
  echo "check_cuda_compile: nvcc not found, skipping the CUDA compile check (CI=true makes this an error)"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for f in csrc/cuda/*.cu; do
  nvcc -std=c++17 -O3 -Icsrc \
    -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_121,code=sm_121 \
    -Xptxas=-warn-spills -c "$f" -o "$out/$(basename "$f").o"
  n=$((n + 1))
done
echo "check_cuda_compile: $n CUDA file(s) compiled for sm_90 and sm_121 with $(nvcc --version | tail -1)"
