#!/usr/bin/env bash
# Launch the real ldmz-gui under Xvfb on the bundled example (examples/example.flac, else a
# generated clip), compress it (ldmz-small if trained, else a tiny seeded model), and save
# docs/screenshot.png (or the path given as $1).
#   needs: xvfb, and Qt's xcb libraries (see packaging/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-docs/screenshot.png}
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" packaging/screenshot.py "$OUT"
