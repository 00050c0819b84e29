#!/usr/bin/env bash
# Rate-distortion fine-tunes of ldmz-small (configs/gpu-rd/*.json, one lambda each) side by side on
# one GPU machine (the `device` tool), then entropy tables fitted for each on the machine's CPUs.
# Each run's model folder (fp16 weights + entropy/tables), log and loss plot come back as
# $OUT/<name>.tar.NN. Data: data/gpu from `scripts/pack_mel_cache.py pack` (carry it).
# Rehearsed on CPU: CONFIGS=tiny.json PY=.venv/bin/python EVERY=1 scripts/gpu_rd.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}  # PY=.venv/bin/python for the tiny CPU rehearsal
if ls .whl/*.whl >/dev/null 2>&1; then  # the GPU machine has no index: carried wheels
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
fi
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/ldmz
export PYTHONPATH=/tmp/site:/tmp/pkg PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null || echo "no GPU: running on CPU"
$PY scripts/pack_mel_cache.py unpack || exit 1
CONFIGS=${CONFIGS:-configs/gpu-rd/*.json}
for c in $CONFIGS; do
  n=$(basename "$c" .json)
  mkdir -p "runs/gpu/$n"
  $PY -c "from ldmz.codec.train.trainer import TrainConfig, train; train(TrainConfig.load('$c'))" \
    > "runs/gpu/$n/console.log" 2>&1 &
done
wait
for c in $CONFIGS; do
  n=$(basename "$c" .json)
  tail -n 2 "runs/gpu/$n/console.log"
  $PY scripts/fit_entropy_tables.py "runs/gpu/$n/model" --data data --every ${EVERY:-2} \
    >> "runs/gpu/$n/console.log" 2>&1 &
done
wait
for c in $CONFIGS; do
  n=$(basename "$c" .json)
  tail -n 3 "runs/gpu/$n/console.log"
  $PY -c "import sys, safetensors.torch as st; p = sys.argv[1]; \
st.save_file({k: v.half() for k, v in st.load_file(p).items()}, p)" \
    "runs/gpu/$n/model/diffusion_pytorch_model.safetensors"  # fp16 to fit the transfer
  tar cf - -C "runs/gpu/$n" model train.log loss.png console.log config.json \
    | split -b 15M -d - "${OUT:-/tmp}/$n.tar."
done
