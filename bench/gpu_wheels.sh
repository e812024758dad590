#!/bin/bash
# Downloads the wheels vidla needs that the device machine's image lacks (PyAV, ftfy, wcwidth; Python 3.12,
# x86-64) into .whl/, ignored by git, for bench/gpu_all.sh (see its header).
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
PY=${PYTHON:-python3}
$PY -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "av==18.1.0" "ftfy==6.3.1" "wcwidth==0.9.4"
ls -la .whl
