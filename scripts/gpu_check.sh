#!/usr/bin/env bash
# GPU check (benchmarks issue, point 6): a few bf16 LoRA steps of LAD and GRPO with ladkit's own trainer on a
# random-init ~0.5B model built from a config; prints tokens/s, step time, peak GPU memory and MFU (update
# micro-batches sized by the GPU token budget, compiled static-cache decoding), then times eager / static /
# compiled decoding side by side (same tokens?), and, where vLLM is installed, its sleep mode (memory freed,
# same tokens after waking), and with 2+ GPUs the first objective under distributed.strategy=fsdp on all of them
# (--fsdp-processes N). Writes the record to --out DIR/gpu_check.json.
#
# For a machine with one H100/H200, no network, torch preinstalled and no vLLM: it needs only this repo and
# the image's torch, transformers and peft (nothing is installed or downloaded). About 5 minutes on an H100
# (4.4 min measured for the two objectives with the older per-row sampler, plus under a minute timing the samplers).
#   bash scripts/gpu_check.sh [--out DIR] [--steps 4] [--max-new-tokens 256] [...]   (see benchmarks/gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
"$PY" - <<'CHECK'
import importlib.util, sys
missing = [m for m in ("torch", "transformers", "peft", "yaml", "numpy") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: {', '.join(missing)} not installed; pip install {' '.join(missing)} (torch from your CUDA build)")
CHECK
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" benchmarks/gpu_check.py "$@"
