#!/usr/bin/env bash
# `npm run notebooks`: execute every numbered notebook headless (budget from DINOTWINS_BUDGET,
# default smoke), save executed copies and HTML to runs/executed/<budget>/, then check in headless
# Chromium that every chart and table rendered. Fails on any cell error, including asynchronous
# errors raised after a cell finished. Needs scripts/setup.sh (Jupyter stack, tslab kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
export DINOTWINS_BUDGET="${DINOTWINS_BUDGET:-smoke}"
export JUPYTER_PATH="$PWD/.jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
out="runs/executed/$DINOTWINS_BUDGET"
if [[ ! -d .jupyter/share/jupyter/kernels ]]; then
  echo "notebooks: the tslab kernel is not registered; run: bash scripts/setup.sh" >&2
  exit 2
fi
echo "notebooks: budget $DINOTWINS_BUDGET, outputs in $out"
/usr/bin/python3 scripts/run-notebooks.py --out "$out" "$@"
/usr/bin/python3 scripts/render-check.py "$out"/*.html
