#!/usr/bin/env bash
# Freeze ldmz with PyInstaller into build/frozen/ldmz/ (executables `ldmz` and `ldmz-gui`).
#   packaging/pyinstaller/build.sh [PYINSTALLER ARGS...]     e.g. --clean to drop the cache
# Installs the `freeze` extra's requirements into .venv when PyInstaller is missing, then prints
# the bundle's size, file count and the build's wall time (also in build/frozen/build-stats.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || { echo "build.sh: no $PY; run packaging/setup.sh first" >&2; exit 1; }

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  # the requirement lives once, in pyproject.toml's `freeze` extra
  mapfile -t reqs < <("$PY" -c 'import tomllib
for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["freeze"]:
    print(r)')
  echo "build.sh: installing ${reqs[*]} into .venv"
  "$PY" -m pip install -q "${reqs[@]}"
fi

OUT=build/frozen
BUNDLE=$OUT/ldmz
mkdir -p "$OUT"
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --log-level "${LOG_LEVEL:-WARN}" \
  --distpath "$OUT" --workpath "$OUT/work" packaging/pyinstaller/ldmz.spec "$@"
secs=$(( $(date +%s) - start ))
rm -f "$OUT/src/ldmz" && rmdir "$OUT/src" 2>/dev/null || true  # the spec's link to the sources

size=$(du -sh "$BUNDLE" | cut -f1)
files=$(find "$BUNDLE" -type f | wc -l)
{
  echo "bundle: $BUNDLE (executables: $BUNDLE/ldmz, $BUNDLE/ldmz-gui)"
  echo "size: $size ($(du -sb "$BUNDLE" | cut -f1) bytes), files: $files"
  echo "build wall time: ${secs} s ($(( secs / 60 )) min $(( secs % 60 )) s)"
  echo "pyinstaller $("$PY" -c 'import PyInstaller; print(PyInstaller.__version__)'), $(date -u +%FT%TZ)"
} | tee "$OUT/build-stats.txt"
