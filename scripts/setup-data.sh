#!/usr/bin/env bash
# Idempotent: Debian's dataset-fashion-mnist, the example image folder of notebook 09 and
# scripts/example-images.ts (Fashion-MNIST's test images as PNG class folders). Without it they fall back to
# CIFAR-10's test images, so a failed install is one line, not an error. (CIFAR-10 itself is found or
# downloaded on first use: see README, Data.)
set -euo pipefail
PKG=dataset-fashion-mnist
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then
  echo "setup-data: $PKG present" >&2
  exit 0
fi
SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO="sudo"; fi
echo "setup-data: installing $PKG (Fashion-MNIST, for notebook 09's example folder)" >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$PKG"; } >&2; then
  echo "setup-data: $PKG could not be installed; notebook 09 uses CIFAR-10's test images instead" >&2
fi
