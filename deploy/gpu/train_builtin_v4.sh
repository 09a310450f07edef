#!/usr/bin/env bash
# Train builtin v4 at 256 px on one GPU (an H200 in ~9 minutes), gate it, and leave the results
# in $OUT: the model folder as one tar (the device tool brings back at most 8 files), the gate's
# JSON, the training log and the loss curves.
#
# Run from the repository root on the GPU machine (the project's `device` tool):
#   run(command="bash deploy/gpu/train_builtin_v4.sh", carry=[".gpu_site"], timeout_s=600)
# The image there has torch, transformers, tokenizers, safetensors, numpy and Pillow but not
# diffusers: `bash deploy/gpu/prepare_site.sh` here first puts it in .gpu_site/ (git-ignored).
# On any other CUDA machine with `make install` done, run it with PYTHON=.venv/bin/python.
#
# Sizes (override by environment): 24,000 renders, VAE 2 min (batch 64, 128-px crops), U-Net
# 4.5 min (batch 128, 64 x 64 latents); the same command as the CPU run otherwise.
set -euo pipefail
OUT=${OUT:-out/gpu}
PYTHON=${PYTHON:-python3}
SAMPLES=${SAMPLES:-24000}
VAE_MINUTES=${VAE_MINUTES:-2}
UNET_MINUTES=${UNET_MINUTES:-4.5}
RESOLUTION=${RESOLUTION:-256}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .gpu_site ]; then export PYTHONPATH="$PWD/.gpu_site:$PWD:${PYTHONPATH:-}"; else export PYTHONPATH="$PWD:${PYTHONPATH:-}"; fi
started=$(date +%s)
"$PYTHON" - <<'PY'
import torch, diffusers, transformers
assert torch.cuda.is_available(), "no CUDA device"
print("torch", torch.__version__, "diffusers", diffusers.__version__, "transformers", transformers.__version__,
      torch.cuda.get_device_name(0))
PY
MODEL="$OUT/builtin_model_v4_${RESOLUTION}"
set -o pipefail
"$PYTHON" -m stickerworld.train_builtin_v4 --device cuda --threads "$(nproc)" --resolution "$RESOLUTION" \
    --samples "$SAMPLES" --vae-minutes "$VAE_MINUTES" --vae-batch-size 64 --vae-crop 128 --vae-lr 1e-3 \
    --minutes "$UNET_MINUTES" --batch-size 128 --lr 1e-3 --ema 0.999 --emotion-weight 4 \
    --checkpoint-minutes 3 --seed 0 --out "$MODEL" 2>&1 | tee "$OUT/train.log"
trained=$(date +%s)
"$PYTHON" -m stickerworld.quality_gate --model "$MODEL" --device cuda --count 96 --swapped --cutout \
    --json "$OUT/quality_gate_v4_${RESOLUTION}.json" --sheet "$MODEL/gate_sheet.png" 2>&1 | tail -n 60 | tee "$OUT/gate.log"
echo "{\"train_seconds\": $((trained - started)), \"gate_seconds\": $(( $(date +%s) - trained ))}" > "$OUT/timing.json"
tar -cf "$OUT/builtin_model_v4_${RESOLUTION}.tar" -C "$OUT" "builtin_model_v4_${RESOLUTION}"
rm -rf "$MODEL" "${MODEL}.train_state"
ls -la "$OUT"
