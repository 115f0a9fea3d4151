#!/usr/bin/env bash
# Compile every CUDA kernel file (csrc/cuda/*.cu) with nvcc alone, for sm_90 (H200)
# and sm_121 (DGX Spark GB10). The kernels use raw pointers and the CUDA runtime only,
# so no torch is needed; this is CI's proof that the CUDA sources compile.
# The full build, with the torch registration files, is bench/build_cuda.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null; then
  echo "check_cuda_compile: nvcc not found, skipping the CUDA compile check"
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
