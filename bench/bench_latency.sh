#!/usr/bin/env bash
# The latency-calibration runs behind bench/RESULTS.md ("Latency estimation"), each
# under the shared benchmark lock so no other helper's timing overlaps ours (builds and
# tests of other sessions may still run alongside). Writes calib/ in the repo root.
#   bash bench/bench_latency.sh            # all five runs, ~10 min on the 2-core CPU
set -euo pipefail
cd "$(dirname "$0")/.."
nas=.venv/bin/nas
lock() { flock /tmp/nas-bench.lock "$@"; }
date -u
# 1. the issue's command: forward, default shape [16, 64, 128], 1 thread
lock $nas calibrate --device cpu --cells 200 --holdout 0.25 --out calib/
# 2. the same on another sample of cells (how stable the figures are)
lock $nas calibrate --device cpu --cells 200 --holdout 0.25 --seed 1 --out calib/seed1/
# 3. repeatability from a second measurement afterwards (includes the machine's drift)
lock $nas calibrate --device cpu --cells 200 --holdout 0.25 --repeat sequential --out calib/sequential/
# 4. cells spread over three shapes: fits "rich" (FLOPs/bytes need several shapes)
lock $nas calibrate --device cpu --cells 200 --holdout 0.25 --shape 16,64,128 \
  --shape 8,64,64 --shape 16,32,96 --out calib/shapes/
# 5. training steps (forward + backward)
lock $nas calibrate --device cpu --cells 200 --holdout 0.25 --mode train --out calib/train/
date -u
