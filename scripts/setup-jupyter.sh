#!/usr/bin/env bash
# Idempotent set-up of the headless notebook stack for dinotwins:
#  1. Debian packages (only the missing ones are installed); where the shared JupyterLab test bundle
#     is beside the project (../shared/tools/jupyterlab, see scripts/lab-notebooks.sh), also the
#     Python packages it runs on (its README's list, plus typing-extensions, which it imports too);
#  2. the tslab kernel registered project-locally under .jupyter/ (absolute python and binary);
#  3. the notebooks/lib -> ../lib symlink (tslab sets rootDir to the notebook folder).
# Use afterwards:  export JUPYTER_PATH="$PWD/.jupyter/share/jupyter"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PKGS=(jupyter-nbconvert python3-nbclient jupyter-client jupyter-notebook chromium)
if [[ "${WITH_PIL:-1}" == 1 ]]; then PKGS+=(python3-pil); fi
if [[ -d ../shared/tools/jupyterlab ]]; then
  PKGS+=(python3-notebook python3-anyio python3-json5 python3-babel python3-pythonjsonlogger python3-async-lru
    python3-httpx python3-websocket python3-requests python3-terminado python3-zmq python3-yaml python3-typing-extensions)
fi
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup-jupyter: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) != 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-jupyter: Debian packages present" >&2
fi

if [[ ! -x "$ROOT/node_modules/.bin/tslab" ]]; then
  echo "setup-jupyter: node_modules/.bin/tslab missing: run npm ci first" >&2
  exit 1
fi

KDIR="$ROOT/.jupyter/share/jupyter/kernels"
want_bin="$ROOT/node_modules/.bin/tslab"
if grep -qF "\"$want_bin\"" "$KDIR/tslab/kernel.json" 2>/dev/null \
   && grep -qF "\"$want_bin\"" "$KDIR/jslab/kernel.json" 2>/dev/null; then
  echo "setup-jupyter: tslab kernel already registered in .jupyter" >&2
else
  echo "setup-jupyter: registering tslab kernel in .jupyter" >&2
  npx --no-install tslab install --python=/usr/bin/python3 --binary="$want_bin" --prefix="$ROOT/.jupyter"
fi

if [[ ! -e "$ROOT/notebooks/lib" ]]; then
  mkdir -p "$ROOT/notebooks"
  ln -s ../lib "$ROOT/notebooks/lib"
  echo "setup-jupyter: created notebooks/lib -> ../lib" >&2
elif [[ ! -L "$ROOT/notebooks/lib" ]]; then
  echo "setup-jupyter: notebooks/lib exists but is not a symlink" >&2
  exit 1
fi

JUPYTER_PATH="$ROOT/.jupyter/share/jupyter" /usr/bin/jupyter kernelspec list >&2
