#!/usr/bin/env bash
# verl's side of the engine checks: ladkit's "lad" policy loss registered in verl, and ClipCov/KLCov against verl's
# own "clip_cov"/"kl_cov", on identical tensors (tests/unit/integrations/test_verl_loss.py,
# tests/unit/objectives/test_verl_parity.py). verl 0.9.1 cannot share .venv (it pins transformers < 5.11), so it
# goes into .venv-verl, which reuses .venv's packages (torch, transformers, ladkit) through a .pth file and adds
# verl and the few modules its core_algos imports, without their dependency pins. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
VERL_VERSION=${VERL_VERSION:-0.9.1}

PYTHON=${PYTHON:-python3}
if [ ! -x .venv-verl/bin/python ]; then
  "$PYTHON" -m venv .venv-verl
fi
SITE=$(.venv-verl/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
MAIN_SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('${MAIN_SITE}')" > "${SITE}/ladkit-venv.pth"
.venv-verl/bin/python -m pip install --quiet --no-deps "verl==${VERL_VERSION}" omegaconf antlr4-python3-runtime==4.9.3 \
  hydra-core codetiming ray tensordict msgpack pyvers orjson 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
.venv-verl/bin/python -c "import verl.trainer.ppo.core_algos, torch; print('verl', '${VERL_VERSION}', '| torch', torch.__version__)"
.venv-verl/bin/python -m pytest -q -p no:cacheprovider tests/unit/integrations/test_verl_loss.py tests/unit/objectives/test_verl_parity.py
