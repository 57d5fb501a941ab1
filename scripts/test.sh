#!/usr/bin/env bash
# `npm test`: strict type check of lib/ test/ bin/ bench/, then every unit test (node:test via tsx).
# Uses lavapipe from .cache/lavapipe when scripts/setup.sh installed it (WebGPU kernel checks), and a
# Slurm cluster for the sweep test (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
# With lavapipe, every WebGPU device Dawn creates prints "Warning: maxDynamic{Storage,Uniform}BuffersPerPipelineLayout
# artificially reduced from 1000000 to 16" (node:test shows it as "# Warning: ..."): lavapipe reports 1,000,000 dynamic
# buffers per layout and Dawn caps it for its dynamic-offset allocator. Harmless here: neither tfjs-backend-webgpu
# (which requests six other limits) nor lib/kernels/webgpu uses dynamic offsets.
if [[ -d .cache/lavapipe ]] && env_lines="$(bash scripts/setup-lavapipe.sh 2>/dev/null)"; then
  eval "$env_lines"
fi
npx tsc -p tsconfig.json --noEmit
echo "typecheck: ok"
# Formatting (Prettier, .prettierrc.json): `npm run format` rewrites, this only checks.
npm run --silent format:check >/dev/null || { npm run --silent format:check; echo "format: run npm run format" >&2; exit 1; }
echo "format: ok"
# Slurm, for the sweep test's real job array (test/sweep-slurm.test.ts): the cluster SLURM_CONF points
# at; else a test cluster started earlier by scripts/slurm-test-cluster.sh; else start one now when this
# machine can (root, packages installed) and stop it at the end; else the test skips and says why.
if [[ -z "${SLURM_TEST_UNAVAILABLE:-}" ]] && ! { command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q 'is UP'; }; then
  if env_line="$(bash scripts/slurm-test-cluster.sh env 2>/dev/null)" && (eval "$env_line" && scontrol ping 2>/dev/null | grep -q 'is UP'); then
    eval "$env_line"
  elif out="$(bash scripts/slurm-test-cluster.sh start 2>&1)"; then
    eval "$(bash scripts/slurm-test-cluster.sh env)"
    trap 'bash scripts/slurm-test-cluster.sh stop >/dev/null 2>&1 || true' EXIT
    echo "slurm: started the one-node test cluster ($SLURM_CONF)"
  else
    export SLURM_TEST_UNAVAILABLE="scripts/slurm-test-cluster.sh start failed: $(grep ERROR <<<"$out" | tail -1)"
    echo "slurm: $SLURM_TEST_UNAVAILABLE"
  fi
fi
shopt -s nullglob
files=(test/*.test.ts)
node --import tsx --import ./test/setup/quiet-tfjs-banner.mjs --test --test-concurrency=1 "${files[@]}"
# The wasm kernel tests once more with the native kernels off (DINOTWINS_NATIVE=0): above they ran on the
# native (oneDNN) kernels wherever scripts/setup-native.sh built them, and wasm's own kernels are the
# fallback for every shape and machine the native ones do not cover.
DINOTWINS_NATIVE=0 node --import tsx --import ./test/setup/quiet-tfjs-banner.mjs --test --test-concurrency=1 \
  test/kernels-wasm.test.ts test/kernels-wasm-threads.test.ts test/losses-wasm.test.ts test/models-backends.test.ts test/layers.test.ts
# A real tslab kernel driven by Debian's jupyter_client (test/kernel/test_interrupt.py): Kernel >
# Interrupt stops training at the next step and re-running resumes to the same weights; one writer
# per run folder; stale locks of killed kernels. Skipped, visibly, only where jupyter_client is missing.
if /usr/bin/python3 -c 'import jupyter_client' 2>/dev/null; then
  /usr/bin/python3 test/kernel/test_interrupt.py
else
  echo "SKIP test/kernel/test_interrupt.py: jupyter_client is not importable by /usr/bin/python3 (bash scripts/setup.sh installs it)"
fi
