#!/usr/bin/env bash
# The prepared GPU check for the lent device (one call; see README "GPU benchmark").
# Llama-2-7B- and XGen-7B-shaped models with random bf16 weights (speed does not depend on the
# weights), prompts of 3.5k and 7.5k tokens, the same table as the CPU benchmark.
# Usage on the device: bash scripts/device_bench.sh   (writes to $OUT/bench, or results/bench)
set -euo pipefail
out="${OUT:-results}/bench"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
# The device image ships its own torch/transformers; a carried wheel in wheels/ pins CI's transformers.
if compgen -G "wheels/transformers-*.whl" >/dev/null; then
  pip install -q --no-deps --target .devdeps wheels/transformers-*.whl
  export PYTHONPATH=".devdeps:$PYTHONPATH"
fi
python -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" | tee "$out/versions.txt"
python -m lazybench.bench.ttft --model llama2-7b --device cuda --dtype bf16 --lengths 3500 \
  --repeats 5 --warmups 5 --decode-steps 16 --out "$out" --tag ttft_gpu_llama2-7b
python -m lazybench.bench.ttft --model xgen-7b --device cuda --dtype bf16 --lengths 3500 7500 \
  --repeats 5 --warmups 5 --decode-steps 16 --out "$out" --tag ttft_gpu_xgen-7b
python -m lazybench.bench.overhead --model llama2-7b --device cuda --dtype bf16 --lengths 3500 \
  --rounds 10 --warmups 3 --decode-steps 8 --out "$out" --tag overhead_gpu_llama2-7b
