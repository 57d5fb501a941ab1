#!/usr/bin/env bash
# Builds .carry/ (gitignored) with everything bench/device/run.sh needs on a lent GPU machine that
# has no Node.js and no internet: the Node binary (xz), the GPU bench and the WebGPU kernel test
# bundled into single CommonJS files (esbuild; only the native `webgpu` package stays outside),
# the linux-x64 dawn.node (xz), and the Vulkan loader + GLVND Debian packages. Must stay < 64 MiB.
#
#   bench/device/prepare.sh        # then: run tool with carry [".carry"], command "bash bench/device/run.sh"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$here/.carry"
cd "$here"
rm -rf "$carry"
mkdir -p "$carry/debs" "$carry/node_modules/webgpu/dist/linux-x64"

echo "[prepare] node $(node --version) -> node.xz" >&2
xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$carry/node.xz"

echo "[prepare] bundling bench/gpu.ts and the WebGPU tests (bench/device/webgpu-checks.ts)" >&2
esb="$here/node_modules/.bin/esbuild"
common=(--bundle --platform=node --format=cjs --target=node20 --external:webgpu --log-level=warning)
"$esb" bench/gpu.ts "${common[@]}" --outfile="$carry/gpu.cjs"
"$esb" bench/device/webgpu-checks.ts "${common[@]}" --outfile="$carry/webgpu-checks.cjs"

echo "[prepare] webgpu package (linux-x64 only)" >&2
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$carry/node_modules/webgpu/"
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$carry/node_modules/webgpu/dist/linux-x64/dawn.node.xz"

echo "[prepare] Vulkan loader and GLVND debs" >&2
(cd "$carry/debs" && apt-get download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >&2)

git rev-parse HEAD > "$carry/COMMIT" 2>/dev/null || true
size=$(du -sb "$carry" | cut -f1)
echo "[prepare] .carry is $((size / 1048576)) MiB" >&2
if (( size > 62 * 1048576 )); then
  echo "[prepare] too big for the 64 MiB carry limit" >&2
  exit 1
fi
