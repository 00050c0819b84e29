#!/usr/bin/env bash
# Train the configs/gpu/*.json candidates side by side on one GPU machine (the `device` tool);
# each run's model folder, log and loss plot come back as $OUT/<name>.tgz.
set -u
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/ldmz
export PYTHONPATH=/tmp/site:/tmp/pkg PYTHONUNBUFFERED=1
nvidia-smi -L
python3 scripts/pack_mel_cache.py unpack || exit 1
for c in configs/gpu/*.json; do
  n=$(basename "$c" .json)
  mkdir -p "runs/gpu/$n"
  python3 -c "from ldmz.codec.train.trainer import TrainConfig, train; train(TrainConfig.load('$c'))" \
    > "runs/gpu/$n/console.log" 2>&1 &
done
wait
for c in configs/gpu/*.json; do
  n=$(basename "$c" .json)
  tail -n 2 "runs/gpu/$n/console.log"
  python3 -c "import sys, safetensors.torch as st; p = sys.argv[1]; \
st.save_file({k: v.half() for k, v in st.load_file(p).items()}, p)" \
    "runs/gpu/$n/model/diffusion_pytorch_model.safetensors"  # fp16 to fit the transfer
  tar cf - -C "runs/gpu/$n" model train.log loss.png console.log config.json \
    | split -b 15M -d - "${OUT:-/tmp}/$n.tar."
done
