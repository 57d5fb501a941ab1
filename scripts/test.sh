#!/usr/bin/env bash
# `npm test`: strict type check of lib/ test/ bin/ bench/, then every unit test (node:test via tsx).
# Uses lavapipe from .cache/lavapipe when scripts/setup.sh installed it (WebGPU kernel checks).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -d .cache/lavapipe ]] && env_lines="$(bash scripts/setup-lavapipe.sh 2>/dev/null)"; then
  eval "$env_lines"
fi
npx tsc -p tsconfig.json --noEmit
echo "typecheck: ok"
shopt -s nullglob
files=(test/*.test.ts)
node --import tsx --test --test-concurrency=1 "${files[@]}"
