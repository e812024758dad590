#!/bin/bash
# Every GPU measurement of issue 16 in one run (planned for about 7 minutes on one H100/H200, stopped by a 450 s
# budget): tables to stdout and to
# $OUT/gpu_all.md (or ./gpu_all.md). On this project's device machine (python3 with CUDA torch, no PyAV/ftfy):
#   here, once:      bash bench/gpu_wheels.sh            # downloads vidla's missing wheels into .whl/ (36 MB)
#   device tool:     run(command="bash bench/gpu_all.sh", carry=[".whl"], timeout_s=600)
# Anywhere else with a GPU and vidla installed: bash bench/gpu_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
$PY bench/gpu_all.py --out "${OUT:-.}/gpu_all.md" "$@"
