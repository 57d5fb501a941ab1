#!/usr/bin/env bash
# Builds the optional native kernels (native/: oneDNN under the wasm backend; see README "Backends").
# Never fails the set-up: when something is missing it writes one line saying what to
# native/build/why-not.txt (the backend report prints it) and exits 0; the wasm kernels are then used.
#   Debian/Ubuntu: installs libdnnl-dev with apt-get when run as root (or with sudo).
#   macOS:         brew install onednn libomp, then this script.
# DINOTWINS_NATIVE_MARCH overrides -march=native (e.g. -march=x86-64-v3 for a binary that must run
# on older machines than the one that builds it).
set -uo pipefail
cd "$(dirname "$0")/.."
why=native/build/why-not.txt
rm -f "$why"
say() { echo "[setup-native] $*"; }
give_up() {
  mkdir -p native/build && echo "$1" > "$why"
  rm -f native/build/Release/dinotwins_native.node
  say "not built: $1 (the wasm kernels will be used)"
  exit 0
}

dnnl_header() {
  for d in /usr/include /usr/local/include /opt/homebrew/include /opt/homebrew/opt/onednn/include; do
    [[ -f "$d/oneapi/dnnl/dnnl.hpp" ]] && { echo "$d"; return 0; }
  done
  return 1
}

if ! dnnl_header >/dev/null && command -v apt-get >/dev/null; then
  sudo_=""
  [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && sudo_="sudo -n"
  say "installing oneDNN (apt-get install libdnnl-dev)"
  $sudo_ apt-get install -y libdnnl-dev >/dev/null 2>&1 || \
    { $sudo_ apt-get update >/dev/null 2>&1 && $sudo_ apt-get install -y libdnnl-dev >/dev/null 2>&1; } || true
fi
inc=$(dnnl_header) || give_up "oneDNN headers not found (Debian/Ubuntu: apt-get install libdnnl-dev; macOS: brew install onednn libomp)"
command -v c++ >/dev/null || command -v g++ >/dev/null || give_up "no C++ compiler (Debian/Ubuntu: apt-get install g++; macOS: xcode-select --install)"
[[ -d node_modules/node-addon-api && -d node_modules/node-gyp ]] || give_up "node-addon-api/node-gyp missing (run npm ci first)"

args=(rebuild --directory native -j 2)
# Node's headers: Debian's nodejs ships them in /usr/include/node (no download needed).
[[ -f /usr/include/node/node_api.h ]] && args+=(--nodedir=/usr)
log=$(mktemp)
# A non-default prefix (Homebrew) goes on the compiler's search path; /usr/include must not (it breaks libstdc++'s #include_next).
case "$inc" in
  /usr/include | /usr/local/include) ;;
  *) export CPLUS_INCLUDE_PATH="$inc${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}" LIBRARY_PATH="${inc%/include}/lib${LIBRARY_PATH:+:$LIBRARY_PATH}" ;;
esac
npx --no-install node-gyp "${args[@]}" > "$log" 2>&1
rc=$?
mkdir -p native/build && mv "$log" native/build/build.log   # node-gyp rebuild empties native/build first
[[ $rc -eq 0 ]] || give_up "the build failed ($(grep -iE 'error' native/build/build.log | grep -v '^gyp' | head -1 | cut -c1-160); log: native/build/build.log)"
# The addon must load and run here: a one-convolution smoke check.
if ! out=$(node -e "
  const a = require('./native/build/Release/dinotwins_native.node'); a.init(1);
  const x = new Float32Array(2 * 4 * 4 * 3).fill(1), w = new Float32Array(3 * 3 * 3 * 2).fill(1), y = new Float32Array(2 * 4 * 4 * 2);
  if (!a.conv2dForward(Int32Array.from([2,4,4,3,2,3,3,1,1,1,1,1,1,1,1,4,4]), x, w, null, y, false) || y[10] !== 27) throw new Error('wrong result ' + y[10]);
  console.log('oneDNN ' + a.info().onednn);
" 2>&1); then
  give_up "the addon does not run: $(echo "$out" | grep -i error | head -1 | cut -c1-160)"
fi
say "built native/build/Release/dinotwins_native.node ($out)"
