#!/usr/bin/env bash
# Idempotent set-up for a fresh clone (Debian/Ubuntu; root or sudo for the apt step):
#   1. npm ci (tfjs-node/-gpu are optional: where libtensorflow cannot be downloaded they are skipped);
#   2. the notebook stack: Debian Jupyter packages + Chromium, the tslab kernel registered
#      project-locally under .jupyter/, the notebooks/lib symlink;
#   3. the native kernels (oneDNN under the wasm backend, scripts/setup-native.sh): installs
#      libdnnl-dev and builds native/; where it cannot, one line says why and wasm's own kernels are used;
#   4. lavapipe (Mesa's CPU Vulkan driver) in .cache/lavapipe, so the WebGPU kernel checks run
#      without a GPU. If it cannot be set up, those checks are skipped with a message;
#   5. Debian's dataset-fashion-mnist for notebook 09's example folder (scripts/setup-data.sh; without
#      it the notebook uses CIFAR-10's test images).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
bash scripts/setup-jupyter.sh
bash scripts/setup-native.sh
if ! bash scripts/setup-lavapipe.sh >/dev/null; then
  echo "setup: lavapipe could not be set up; WebGPU kernel tests will be skipped" >&2
fi
bash scripts/setup-data.sh
