#!/usr/bin/env bash
# `npm run notebooks:lab [-- --only 00,01,interrupt]`: every numbered notebook through JupyterLab's own
# UI, as users run them (test/lab/run.ts): headless Chromium opens a copy of each notebook, waits for
# "TypeScript | Idle", clicks Run > Run All Cells and checks what Lab drew; then Kernel > Interrupt
# Kernel during 01's training, and the re-run resumes. Budget from DINOTWINS_BUDGET (default smoke);
# copies, screenshots, the runs it trains and Lab's log in runs/executed/<budget>/lab/.
#
# The Lab is the project's test bundle, JupyterLab 4.6.3 built for Debian bookworm's /usr/bin/python3
# (../shared/tools/jupyterlab, unpacked once into .cache/jupyterlab/; its Python packages come from
# scripts/setup-jupyter.sh). Users get JupyterLab from pip or conda (README, "Notebooks"). Where
# ../shared is absent (a clone outside the project's machines) this skips and says why; where it is
# there and a check fails, this fails. DINOTWINS_JUPYTERLAB_TARBALL names another copy of the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
export DINOTWINS_BUDGET="${DINOTWINS_BUDGET:-smoke}"
tarball="${DINOTWINS_JUPYTERLAB_TARBALL:-../shared/tools/jupyterlab/jupyterlab-4.6.3-bookworm-nomaps.tar.xz}"
if [[ ! -f "$tarball" ]]; then
  echo "SKIP notebooks in JupyterLab: $tarball is absent (the JupyterLab test bundle is only beside the project's own clones, as in CI)"
  exit 0
fi
if [[ ! -f .jupyter/share/jupyter/kernels/tslab/kernel.json ]]; then
  echo "notebooks:lab: the tslab kernel is not registered in .jupyter; run: bash scripts/setup.sh" >&2
  exit 2
fi
dest=.cache/jupyterlab
want="$(stat -c '%s %Y' "$tarball") $(basename "$tarball")"
if [[ "$(cat "$dest/.unpacked-from" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$dest"
  mkdir -p "$dest"
  [[ -f .cache/.gitignore ]] || printf '*\n' > .cache/.gitignore
  tar -xJf "$tarball" -C "$dest"
  echo "$want" > "$dest/.unpacked-from"
fi
bundle="$(dirname "$(ls "$dest"/*/run-lab.sh | head -1)")"
if ! err="$(PYTHONPATH="$bundle/python" /usr/bin/python3 -c 'import jupyterlab.labapp' 2>&1)"; then
  echo "notebooks:lab: JupyterLab cannot start with /usr/bin/python3 ($(tail -1 <<<"$err")); run: bash scripts/setup-jupyter.sh" >&2
  exit 1
fi
if [[ ! -x /usr/bin/chromium ]]; then
  echo "notebooks:lab: /usr/bin/chromium is missing; run: bash scripts/setup-jupyter.sh" >&2
  exit 1
fi
exec node --import tsx test/lab/run.ts --bundle "$bundle" "$@"
