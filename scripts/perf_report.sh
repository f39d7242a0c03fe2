#!/usr/bin/env bash
# Regenerates the measurements behind docs/PERFORMANCE.md and its roofline plot
# (docs/roofline.png): makes a Qwen3-0.6B-shape model if absent, re-measures the
# machine's limits, runs `oko bench` at 1 and 2 threads and `oko profile`, and plots
# every op's achieved GFLOP/s against the bandwidth and peak roofs.
# Usage: scripts/perf_report.sh [BUILD_DIR]   (MODEL=DIR to reuse a model folder)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
OKO="$BUILD/oko"
MODEL="${MODEL:-${TMPDIR:-/tmp}/oko-qwen3-0.6b}"
OUT="$BUILD/perf"
mkdir -p "$OUT"

if ! command -v gnuplot >/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get install -y -qq gnuplot-nox
fi
[[ -f "$MODEL/model.safetensors" ]] || "$OKO" make-model --preset qwen3-0.6b --out "$MODEL" --seed 1

for t in 1 2; do
  "$OKO" bench --machine -t "$t"
  "$OKO" bench -m "$MODEL" -t "$t" -p 512 -n 128 -r 3 --json > "$OUT/bench_t$t.json"
  "$OKO" bench -m "$MODEL" -t "$t" -p 0 -n 64 -d 4096 -r 2 --json > "$OUT/bench_d4096_t$t.json"
done
"$OKO" profile -m "$MODEL" -t 2 -p 512 -n 64 --json > "$OUT/profile_t2.json"
python3 scripts/roofline.py "$OUT" docs/roofline.png
echo "wrote $OUT/*.json and docs/roofline.png"
