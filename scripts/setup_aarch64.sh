#!/usr/bin/env bash
# What the aarch64 checks (scripts/check_aarch64.sh) need, installed by the project:
# Debian's cross compiler g++-aarch64-linux-gnu and qemu-user (apt, as root), and the
# aarch64 torch wheel of the venv's torch version (cp311, manylinux_2_28_aarch64),
# downloaded once with pip and unpacked (headers and libraries) under the ignored
# .cache/aarch64/torch-<version>/.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup_aarch64: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
ver=$(.venv/bin/python -c "import torch; print(torch.__version__.split('+')[0])")
dir=.cache/aarch64
root=$dir/torch-$ver
if [ ! -f "$root/.complete" ]; then
  mkdir -p "$dir"
  whl=$dir/torch-$ver-cp311-cp311-manylinux_2_28_aarch64.whl
  if [ ! -f "$whl" ]; then
    .venv/bin/pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
      --python-version 3.11 --implementation cp -d "$dir" "torch==$ver"
  fi
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  # Headers, and the CPU libraries with what they load (libtorch_cuda is not needed).
  unzip -q -o "$whl" 'torch/include/*' 'torch/lib/libc10.so' 'torch/lib/libtorch.so' \
    'torch/lib/libtorch_cpu.so' 'torch/lib/libgomp*' 'torch/lib/libarm_compute*' \
    'torch/lib/libnvpl*' 'torch/lib/libgfortran*' -d "$root.tmp"
  rm -rf "$root" && mv "$root.tmp" "$root"
  touch "$root/.complete"
fi
echo "setup_aarch64: $(aarch64-linux-gnu-g++ --version | head -1); $(qemu-aarch64 --version | head -1); torch $ver aarch64 in $root"
