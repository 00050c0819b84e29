#!/usr/bin/env bash
# Stage 2 of ldmzvoc (adversarial fine-tuning) on a lent GPU machine, in one `device` call:
#   run(command="bash scripts/gpu_vocoder.sh", carry=["runs/vocoder/pack", ".whl"],
#       timeout_s=560)
# Prepare here first (both gitignored, about 37 MiB with the working tree's 21):
#   python scripts/pack_vocoder_audio.py --manifest data/manifest.csv --out runs/vocoder/pack
#   bash scripts/gpu_vocoder.sh --wheels      # the wheels the GPU image lacks, into .whl/
# There: codec mels of every segment from ldmz-small at 2/3 bits, then `ldmz train --config
# configs/vocoder-gpu.json` from the shipped weights, with multi-period and multi-resolution
# discriminators. Back under $OUT: vocoder-gpu.tar.NN (run folder: model/ and best/ in fp16,
# train.log, loss.png, console.log); `cat vocoder-gpu.tar.* | tar x` to read it.
# A tiny check on this CPU: DEVICE=cpu CLIPS=6 BUDGET=20 PACK=/tmp/tinypack OUT=/tmp/g \
#   PYTHON=.venv/bin/python bash scripts/gpu_vocoder.sh
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--wheels" ]; then  # versions as in this checkout's venv; Python 3.12 there
  exec python3 -m pip download -q --only-binary=:all: --no-deps --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 -d .whl librosa==0.11.0 soundfile==0.14.0 soxr==1.1.0 \
    zstandard==0.25.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.8
fi
DEVICE=${DEVICE:-cuda} CLIPS=${CLIPS:-100000} BUDGET=${BUDGET:-300}
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  nvidia-smi -L
fi
WORK=$(mktemp -d)
mkdir -p "$WORK/pkg" && ln -sfn "$PWD" "$WORK/pkg/ldmz"
export PYTHONPATH=/tmp/site:$WORK/pkg PYTHONUNBUFFERED=1
PACK=${PACK:-runs/vocoder/pack}
[ -f "$PACK/manifest.csv" ] || {
  echo "$PACK: no manifest.csv; run scripts/pack_vocoder_audio.py and carry it"; exit 1; }
DATA=$WORK/data RUN=$WORK/run
trap 'rm -rf "$WORK"' EXIT
t0=$(date +%s)
for split in val train; do
  n=$CLIPS; [ $split = val ] && n=$(( CLIPS < 24 ? CLIPS : 24 ))
  $PY scripts/vocoder_data.py --manifest "$PACK/manifest.csv" --split $split \
    --clips "$n" --shard 50 --frames 256 --no-teacher --device "$DEVICE" --threads 8 \
    --out "$DATA/$split" > "$OUT/data-$split.log" 2>&1 || { tail -n 5 "$OUT/data-$split.log"; exit 1; }
done
echo "data: $(( $(date +%s) - t0 )) s"
$PY -c "
import json, sys
c = json.load(open('configs/vocoder-gpu.json'))
c.update(data='$DATA', out='$RUN', device='$DEVICE', time_budget_s=float('$BUDGET'))
if '$DEVICE' == 'cpu':
    c.update(batch=2, frames=16, disc_width=4, log_every=2, val_every=4, ckpt_every=4)
json.dump(c, open('/tmp/vocoder-gpu.json', 'w'), indent=2)"
$PY -m ldmz train --config /tmp/vocoder-gpu.json > "$RUN.console.log" 2>&1
rc=$?
tail -n 3 "$RUN.console.log"
mkdir -p "$RUN" && cp "$RUN.console.log" "$RUN/console.log"
tar cf - -C "$RUN" --exclude last.pt . | split -b 15M -d - "$OUT/vocoder-gpu.tar."
exit $rc
