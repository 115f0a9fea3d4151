#!/usr/bin/env bash
# The latency-calibration runs behind bench/RESULTS.md ("Latency estimation"): the final
# set for issue 12, meant for a QUIET machine (1-minute load average below 1; the script
# prints it before and after every run, and each run records it in calibration.json).
# Each run is under the shared benchmark lock, so no other helper's timing overlaps.
# Writes calib/ in the repo root, then prints the table rows for RESULTS.md.
#   bash bench/bench_latency.sh     # 8 runs, ~15 min on the quiet 2-core CPU (under load: 2-3x)
#   NAS_CALIB_EXTRA="--cells 24 --rounds 2" bash bench/bench_latency.sh   # smoke test of the
#                                   # script (later flags win), into calib-smoke/ (NAS_CALIB_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
nas=.venv/bin/nas
out=${NAS_CALIB_DIR:-calib}
run() {  # run NAME ARGS...: one calibration into calib/NAME, under the lock
  local name=$1
  shift
  echo "$(date -u +%T) $name: load $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086  # NAS_CALIB_EXTRA is a list of flags
  flock /tmp/nas-bench.lock $nas calibrate --device cpu --holdout 0.25 --out "$out/$name/" "$@" \
    ${NAS_CALIB_EXTRA:-}
}
date -u
# 1-3. the issue's command (forward, [16, 64, 128], 1 thread), three samples of cells
run fwd --cells 200
run fwd_seed1 --cells 200 --seed 1
run fwd_seed2 --cells 200 --seed 2
# 4. training steps (forward + backward)
run train --cells 200 --mode train
# 5. few cells: 60 fitted, 20 held out
run fwd_80 --cells 80
# 6-8. the other shapes: small, the signal supernet's rows (batch*series, patches,
# hidden) at the default signal config, and large (hidden 256)
run small --cells 200 --shape 8,32,32
run signal --cells 200 --shape 224,42,16
run large --cells 200 --shape 16,64,256
date -u
$py bench/latency_table.py "$out"/fwd "$out"/fwd_seed1 "$out"/fwd_seed2 "$out"/train \
  "$out"/fwd_80 "$out"/small "$out"/signal "$out"/large
