#!/usr/bin/env bash
# Sets up lavapipe (Mesa's CPU Vulkan driver) in a private folder so Dawn's WebGPU (npm `webgpu`)
# finds an adapter on a machine without a GPU. Debian 12's own Mesa 22.3.6 is rejected by Dawn
# ("shaderUniform*ArrayDynamicIndexing required"); Mesa 25 from bookworm-backports works.
#
# Nothing is installed system-wide and no root is needed: apt runs with a private state folder
# whose sources are the system's plus bookworm-backports, packages are `apt-get download`ed and
# unpacked with `dpkg -x` into $LAVAPIPE_DIR (default <repo>/.cache/lavapipe, which gets its own
# `.gitignore`). Idempotent: a second run only re-prints the environment.
#
# Usage:   scripts/setup-lavapipe.sh            # prints `export ...` lines on stdout, log on stderr
#          eval "$(scripts/setup-lavapipe.sh)"  # sets VK_DRIVER_FILES, VK_ICD_FILENAMES, LD_LIBRARY_PATH
#          scripts/setup-lavapipe.sh --check    # also asks Node/Dawn for an adapter and prints it
# Env:     LAVAPIPE_DIR (target folder), LAVAPIPE_FORCE=1 (re-download)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${LAVAPIPE_DIR:-$here/.cache/lavapipe}"
root="$dir/root"
apt_dir="$dir/apt"
stamp="$dir/.done"
suite_bp="bookworm-backports"
# Packages that must come from backports (Mesa 25 needs libdrm >= 2.4.121).
from_backports=(mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 libdrm-common)

log() { echo "[setup-lavapipe] $*" >&2; }

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  log "needs a Debian-like system with apt-get and dpkg (this recipe targets Debian 12 bookworm)"
  exit 2
fi
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if [[ "$codename" != "bookworm" ]]; then
  log "warning: written for Debian 12 (bookworm), this is '${codename:-unknown}'; trying anyway"
fi

find_icd() { find "$root" -name 'lvp_icd*.json' 2>/dev/null | head -n 1; }

if [[ -f "$stamp" && -z "${LAVAPIPE_FORCE:-}" && -n "$(find_icd)" ]]; then
  log "already set up in $dir"
else
  rm -rf "$root" "$dir/debs"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$dir/debs" "$root"
  printf '*\n' > "$dir/.gitignore"
  if [[ "$dir" == "$here/.cache/"* ]]; then printf '*\n' > "$here/.cache/.gitignore"; fi

  # Private apt configuration: the system's deb sources plus bookworm-backports.
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && cp "$f" "$apt_dir/sources.list.d/"
  done
  if ! grep -rqs "$suite_bp" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > "$apt_dir/sources.list.d/zz-backports.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite_bp
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  sl=/dev/null
  [[ -f /etc/apt/sources.list ]] && sl=/etc/apt/sources.list
  apt_opts=(-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o "Dir::Etc::sourcelist=$sl" -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
            -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  [[ "$(id -u)" != 0 ]] && apt_opts+=(-o "APT::Sandbox::User=$(id -un)")
  log "apt-get update (private lists in $apt_dir)"
  apt-get "${apt_opts[@]}" -qq update >&2

  # Dependency closure of mesa-vulkan-drivers (backports version), minus what is already installed
  # at a new enough version. libdrm* always come from backports; libvulkan1 always comes along
  # (Dawn dlopens libvulkan.so.1).
  mapfile -t closure < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances -t "$suite_bp" mesa-vulkan-drivers libvulkan1 \
      | grep -v '^ ' | grep -v '^<' | sed 's/:any$//' | sort -u)
  want=()
  for p in "${closure[@]}"; do
    if printf '%s\n' "${from_backports[@]}" libvulkan1 | grep -qx "$p"; then want+=("$p"); continue; fi
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then continue; fi
    want+=("$p")
  done
  log "downloading: ${want[*]}"
  (
    cd "$dir/debs"
    for p in "${want[@]}"; do
      if printf '%s\n' "${from_backports[@]}" | grep -qx "$p"; then
        apt-get "${apt_opts[@]}" -qq download "$p/$suite_bp" >&2
      else
        apt-get "${apt_opts[@]}" -qq download "$p" >&2
      fi
    done
  )
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$root"; done
  icd="$(find_icd)"
  if [[ -z "$icd" ]]; then log "no lvp_icd*.json after unpacking: mesa-vulkan-drivers layout changed?"; exit 1; fi
  # The ICD json names the driver by absolute path (/usr/lib/...): point it into our folder.
  lib="$(grep -o '"library_path"[^,}]*' "$icd" | sed 's/.*: *"\(.*\)"/\1/')"
  if [[ "$lib" == /* && "$lib" != "$root"* ]]; then
    sed -i "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$root$lib\"#" "$icd"
  fi
  ls "$dir"/debs/*.deb | xargs -n1 basename > "$stamp"
  log "unpacked $(wc -l < "$stamp") packages into $root"
fi

icd="$(find_icd)"
libdirs="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu"
echo "export VK_DRIVER_FILES=$icd"
echo "export VK_ICD_FILENAMES=$icd"
echo "export LD_LIBRARY_PATH=$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"

if [[ "${1:-}" == "--check" ]]; then
  log "asking Dawn for an adapter"
  (
    cd "$here"
    export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd" LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    node --input-type=module -e "
      const { create, globals } = await import('webgpu');
      Object.assign(globalThis, globals);
      const a = await create([]).requestAdapter();
      if (!a) { console.error('no WebGPU adapter'); process.exit(1); }
      const i = a.info ?? {};
      console.error('[setup-lavapipe] adapter:', [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' | '));
      process.exit(0);
    " >&2
  )
fi
