#!/usr/bin/env bash
# The GPU check in one command (benchmarks/README.md, "The GPU check"). On the device machine, from the
# repo root, with the staged data carried (python benchmarks/gpu_check.py --stage-data .device_data first):
#   bash benchmarks/gpu_check.sh                     # -> $OUT/results.json, summary.txt, gpu_check.tar.gz
#   bash benchmarks/gpu_check.sh --parts suite --budget 540     # one part with all the time
# Anywhere else: bash benchmarks/gpu_check.sh --out DIR [--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=$(command -v python3 || command -v python)
if [ -n "${OUT:-}" ]; then
    # the device returns 8 files at most: the work goes to a temporary folder, $OUT gets three files
    exec "$py" benchmarks/gpu_check.py --out "$OUT" --pack "$@"
fi
exec "$py" benchmarks/gpu_check.py "$@"
