#!/usr/bin/env bash
# `npm run notebook [-- jupyter options]`: a Jupyter server on notebooks/ with the project's tslab
# kernel ("TypeScript", registered in .jupyter/ by scripts/setup.sh) on JUPYTER_PATH.
#  - JupyterLab when `jupyter lab` works (pip install jupyterlab), else the classic Jupyter Notebook
#    (what Debian packages: jupyter-notebook; JupyterLab is not in Debian 12);
#  - binds 127.0.0.1 unless DINOTWINS_NOTEBOOK_IP says otherwise (the token still protects it);
#  - adds --allow-root when run as root (containers), which Jupyter otherwise refuses.
# Extra options go to Jupyter, e.g. `npm run notebook -- --port 9999 --no-browser`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
if [[ ! -f .jupyter/share/jupyter/kernels/tslab/kernel.json ]]; then
  echo "notebook: the tslab kernel is not registered in .jupyter; run: bash scripts/setup.sh" >&2
  exit 2
fi
export JUPYTER_PATH="$ROOT/.jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
# Debian's Python 3.11 + debugpy print a 4-line "frozen modules" debugger warning on every start.
export PYDEVD_DISABLE_FILE_VALIDATION="${PYDEVD_DISABLE_FILE_VALIDATION:-1}"

# A `jupyter` that works: the one on PATH (a venv, pip --user), else Debian's (a pyenv shim on PATH
# may exist without Jupyter behind it).
jupyter_bin=""
for j in "$(command -v jupyter || true)" /usr/bin/jupyter; do
  if [[ -n "$j" && -x "$j" ]] && "$j" --version >/dev/null 2>&1; then jupyter_bin="$j"; break; fi
done
if [[ -z "$jupyter_bin" ]]; then
  echo "notebook: no working Jupyter found; install JupyterLab (pip install jupyterlab) or run bash scripts/setup.sh (Debian's classic notebook)" >&2
  exit 2
fi
if "$jupyter_bin" lab --version >/dev/null 2>&1; then
  app=lab
else
  app=notebook
  echo "notebook: JupyterLab is not installed (pip install jupyterlab); starting the classic Jupyter Notebook" >&2
  if ! "$jupyter_bin" notebook --version >/dev/null 2>&1; then
    echo "notebook: neither 'jupyter lab' nor 'jupyter notebook' works with $jupyter_bin; run bash scripts/setup.sh" >&2
    exit 2
  fi
fi
args=(--ip="${DINOTWINS_NOTEBOOK_IP:-127.0.0.1}" --notebook-dir="$ROOT/notebooks")
if [[ $(id -u) == 0 ]]; then args+=(--allow-root); fi
echo "notebook: jupyter $app on ${DINOTWINS_NOTEBOOK_IP:-127.0.0.1}, notebooks in notebooks/, kernel \"TypeScript\" (tslab) from .jupyter" >&2
exec "$jupyter_bin" "$app" "${args[@]}" "$@"
