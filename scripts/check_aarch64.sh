#!/usr/bin/env bash
# Cross-compile the CPU part of the extension for aarch64 (DGX Spark's Grace CPU) with
# Debian's aarch64-linux-gnu-g++ against the aarch64 torch wheel's headers, and link the
# kernels into a shared library against its libtorch_cpu / libc10 with no undefined
# symbol left: an x86-only intrinsic, a missing #if guard or a missing symbol fails
# here, not in a user's pip install on a Spark. Same flags as CMakeLists.txt (-O3
# -Wall, C++20, -ffp-contract=off on csrc/cpu/enumerate*.cpp). csrc/module.cpp (pybind11
# build info, no kernels) needs aarch64 Python headers and is not built here.
# Output: build-aarch64/libnas_cpu.so. Setup: scripts/setup_aarch64.sh.
#
# --emulate: then run the CPU kernels on aarch64 under qemu-user: tests/aarch64/
# ops_harness.cpp (linked against the library above and the aarch64 libtorch_cpu)
# replays the torch.ops.nas calls that tests/aarch64/run_emulated.py records on x86 and
# the outputs are compared (enumeration and decode bit for bit). The aarch64 wheel is a
# CUDA build: its libtorch_cpu needs libcudart.so.13 / libcupti.so.13, which are
# replaced by empty stub libraries (nothing here calls CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_aarch64.sh >/dev/null
ver=$(.venv/bin/python -c "import torch; print(torch.__version__.split('+')[0])")
T=.cache/aarch64/torch-$ver/torch
out=build-aarch64
mkdir -p "$out"
CXX=aarch64-linux-gnu-g++
flags=(-std=gnu++20 -O3 -fPIC -Wall -Wno-unused-parameter -Icsrc -isystem "$T/include"
  -isystem "$T/include/torch/csrc/api/include" "-DNAS_TORCH_VERSION=\"$ver\"")
srcs=(csrc/ops.cpp csrc/cpu/*.cpp)
start=$SECONDS
pids=()
objs=()
for f in "${srcs[@]}"; do
  o=$out/$(basename "${f%.cpp}").o
  objs+=("$o")
  extra=()
  case "$(basename "$f")" in enumerate*.cpp) extra=(-ffp-contract=off) ;; esac
  # Rebuild only what changed (a file or any header it includes: -MMD deps).
  if [ -f "$o" ] && [ -f "$o.d" ] && [ -z "$(find $(sed -e 's/^[^:]*://' -e 's/\\$//' "$o.d") -newer "$o" 2>/dev/null)" ]; then
    continue
  fi
  "$CXX" "${flags[@]}" "${extra[@]}" -MMD -MF "$o.d" -c "$f" -o "$o" &
  pids+=($!)
  # two at a time (2 cores)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
"$CXX" -shared -o "$out/libnas_cpu.so" "${objs[@]}" -L"$T/lib" -ltorch_cpu -lc10 \
  -Wl,--no-undefined -Wl,-rpath-link,"$T/lib"
# The bit-exact files must hold no fused multiply-add (scalar fmadd/fmsub/fnmadd/
# fnmsub, vector fmla/fmls): GCC contracts a * b + c on aarch64 unless told not to.
for o in "$out"/enumerate*.o; do
  n=$(aarch64-linux-gnu-objdump -d "$o" | grep -cE '\s(fn?m(add|sub)|fml[as])\s' || true)
  if [ "$n" != 0 ]; then
    echo "check_aarch64: $o has $n fused multiply-add instruction(s); its sums must be bit-exact" >&2
    exit 1
  fi
done
file "$out/libnas_cpu.so" | grep -q "ARM aarch64" || { echo "check_aarch64: not an aarch64 library" >&2; exit 1; }
msg="check_aarch64: ${#srcs[@]} files cross-compiled for aarch64 ($($CXX --version | head -1)) against torch $ver aarch64 and linked with no undefined symbols, no FMA in enumerate*.o: $out/libnas_cpu.so ($((SECONDS - start)) s)"
echo "$msg"
[ "${1:-}" = "--emulate" ] || exit 0

start=$SECONDS
mkdir -p "$out/stubs"
echo 'void nas_cuda_stub(void) {}' >"$out/stubs/stub.c"
for lib in libcudart.so.13 libcupti.so.13; do
  echo "$lib { global: *; };" >"$out/stubs/$lib.map"
  aarch64-linux-gnu-gcc -shared -fPIC -Wl,-soname,$lib -Wl,--version-script="$out/stubs/$lib.map" \
    "$out/stubs/stub.c" -o "$out/stubs/$lib"
done
"$CXX" -std=gnu++20 -O1 -Icsrc -isystem "$T/include" -isystem "$T/include/torch/csrc/api/include" \
  tests/aarch64/ops_harness.cpp -o "$out/ops_harness" -Wl,--no-as-needed -L"$out" -lnas_cpu \
  -L"$T/lib" -ltorch_cpu -lc10 -Wl,-rpath-link,"$T/lib" -Wl,--allow-shlib-undefined 2>&1 |
  { grep -v 'warning: libcu' || true; }
.venv/bin/python tests/aarch64/run_emulated.py "$out/ops_harness" "$out:$out/stubs:$T/lib"
echo "check_aarch64 --emulate: harness built and run in $((SECONDS - start)) s"
