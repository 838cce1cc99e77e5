#!/usr/bin/env bash
# `make lab`: JupyterLab on notebooks/ with the project's kernel (this venv's python), on 127.0.0.1 only,
# token auth on; prints the URL to open. Run folders land in runs/ at the repository root, as with `ladkit`.
#   LAB_PORT (default: the first free port from 8888), JUPYTER_TOKEN (default: a fresh random one),
#   LAB_NOTEBOOKS (the folder served, default notebooks/), PY (default .venv/bin/python);
#   extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! "$PY" -c "import jupyterlab, ipywidgets, anywidget" 2>/dev/null; then
  echo "JupyterLab is not installed in $PY's environment: run 'make setup' (or pip install -e '.[notebooks]')" >&2
  exit 1
fi
# A kernelspec named python3 (the name the notebooks ask for) that launches exactly this interpreter, found
# first through JUPYTER_PATH: a python3 kernel of the user's or the system's cannot take its place.
KERNELS=$("$PY" -c "import sys; print(sys.prefix)")/share/ladkit-lab
"$PY" -m ipykernel install --prefix "$KERNELS" --name python3 --display-name "Python 3 (ladkit)" >/dev/null 2>&1
export JUPYTER_PATH="$KERNELS/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export LADKIT_RUN_ROOT=${LADKIT_RUN_ROOT:-$PWD/runs}
export JUPYTER_TOKEN=${JUPYTER_TOKEN:-$("$PY" -c "import secrets; print(secrets.token_hex(24))")}
PORT=${LAB_PORT:-$("$PY" - <<'PICK'
import socket
for port in range(8888, 8988):
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            print(port)
            break
PICK
)}
ROOT_OK=()
if [ "$(id -u)" -eq 0 ]; then
  ROOT_OK=(--allow-root)  # containers run as root; Jupyter refuses that unless told
fi
echo "JupyterLab: http://127.0.0.1:$PORT/lab?token=$JUPYTER_TOKEN  (runs go to $LADKIT_RUN_ROOT; Ctrl-C stops it)"
exec "$PY" -m jupyterlab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port="$PORT" --ServerApp.port_retries=0 \
  --ServerApp.root_dir="${LAB_NOTEBOOKS:-notebooks}" "${ROOT_OK[@]}" "$@"
