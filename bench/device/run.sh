#!/usr/bin/env bash
# The one script for a lent GPU machine (no Node.js, no internet): run from the repo root with the
# .carry/ folder built by bench/device/prepare.sh carried along. Steps, each with its own time limit
# so a slow one cannot starve the rest, results under $OUT as they are produced:
#   1. unpack Node and dawn.node; unpack the Vulkan loader + GLVND debs into / and ldconfig;
#      point Vulkan at NVIDIA's ICD (VK_DRIVER_FILES)              -> results.tar: env.txt
#   2. WebGPU kernel checks on the real GPU (bench/device/webgpu-checks.ts: every WebGPU test file)
#                                                                    -> results.tar: kernels-test.txt
#   3. PyTorch reference, same steps and kernel shapes               -> results.tar: torch.json, torch.txt
#   4. per-kernel timings: stock, ours with each GEMM variant (layouts, blocks, prefetch, vec4
#      loads), Winograd                                              -> results.tar: gpu-kernels.json, gpu-kernels.txt
#   5. our kernels: all three training steps                         -> results.tar: gpu-ours.json, gpu-ours-steps.txt
#      and the Barlow step with variants: 8x8 blocked with prefetch, with and without vec4 loads;
#      Winograd everywhere                                            -> results.tar: gpu-variants.json, gpu-variants.txt
#      and tuned (every GEMM variant timed on every conv GEMM of the step, and direct vs Winograd
#      on every 3x3 stride-1 pass: the per-shape table for choosing defaults; rows kept as
#      measured if the phase runs out of time)                       -> results.tar: gpu-tuned.json, gpu-tuned.txt
#   6. per-kernel GPU profile of our Barlow step (timestamp queries) -> results.tar: gpu-profile.json, gpu-profile.txt
#   7. conv time after an idle GPU vs behind a burst (does the profile's idle GPU run kernels slower?)
#                                                                    -> results.tar: gpu-clocks.json, gpu-clocks.txt
#   8. stock kernels: the Barlow Twins ResNet-18 step only           -> results.tar: gpu-stock.json, gpu-stock.txt
# Time limits add up to 535 s: call the run tool with timeout_s 560. The .json files are rewritten
# after every result, so a phase stopped at its limit keeps what it measured.
# Locally (CPU + lavapipe) `LOCAL=1 QUICK=1 bash bench/device/run.sh` checks the logic: nothing is
# unpacked into /, the current Vulkan environment is kept, and every run is shrunk (--quick);
# PYTHON=/usr/bin/python3 picks an interpreter that has torch.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"
carry="$here/.carry"
OUT="${OUT:-$here/.carry/out}"
mkdir -p "$OUT"
work="$(mktemp -d)"
# The device tool returns at most 8 files from $OUT: results go to $RES and are re-packed into
# $OUT/results.tar after every phase (so a run cut off at its limit keeps the finished phases).
RES="$work/results"
mkdir -p "$RES"
pack() { tar -C "$RES" -cf "$work/results.tar" . && mv -f "$work/results.tar" "$OUT/results.tar"; }
quick=()
[[ -n "${QUICK:-}" ]] && quick=(--quick)
log() { echo "[run.sh $(date +%H:%M:%S)] $*" | tee -a "$OUT/run-log.txt" >&2; }

[[ -f "$carry/node.xz" ]] || { log "no .carry/node.xz: run bench/device/prepare.sh here first and carry .carry"; exit 2; }
unxz_to() { # file.xz dest
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$1" "$2"; fi
}
log "unpacking node and dawn.node"
unxz_to "$carry/node.xz" "$work/node" && chmod +x "$work/node"
dawn="$carry/node_modules/webgpu/dist/linux-x64/dawn.node"
[[ -f "$dawn" ]] || unxz_to "$dawn.xz" "$dawn"
NODE="$work/node"

if [[ -z "${LOCAL:-}" ]]; then
  log "unpacking Vulkan loader + GLVND into /"
  for d in "$carry"/debs/*.deb; do dpkg -x "$d" / || log "dpkg -x failed for $d"; done
  ldconfig || true
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [[ -f "$icd" ]] || icd="$(find / -name 'nvidia_icd*.json' -not -path '*/proc/*' 2>/dev/null | head -n 1)"
  export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
fi
{
  echo "node: $("$NODE" --version)"; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; echo "commit: $(cat "$carry/COMMIT" 2>/dev/null)"
  nvidia-smi 2>&1 | head -n 15
} > "$RES/env.txt"
log "env: $(head -n 2 "$RES/env.txt" | tr '\n' ' ')"

step() { # name limit_s outfile cmd...
  local name="$1" limit="$2" outfile="$3"; shift 3
  log "start $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$RES/$outfile" 2>&1
  local rc=$?
  log "end $name rc=$rc in $((SECONDS - t0))s"
  grep -v '^Warning: maxDynamic' "$RES/$outfile" | tail -n 40 >&2
  pack
}

# PHASES (comma list) picks phases; default: checks,torch,tf32,kernels,steps,variants,profile,clocks,stock.
# Others: auto (128-wide tiles: slower on the H100), rest, submit, micro, cpuprof.
PHASES="${PHASES:-checks,torch,tf32,kernels,steps,variants,tune,profile,clocks,stock}"
want() { [[ ",$PHASES," == *",$1,"* ]]; }
dawn_prof=(--dawn enable-dawn-features=allow_unsafe_apis --dawn disable-dawn-features=timestamp_quantization)

want checks && step "kernel checks" 45 kernels-test.txt "$NODE" --test "$carry/webgpu-checks.cjs"
want torch && step "pytorch reference" 45 torch.txt "${PYTHON:-python3}" bench/torch_gpu.py "${quick[@]}" --out "$RES/torch.json"
want tf32 && step "pytorch steps, TF32 defaults" 30 torch-tf32.txt "${PYTHON:-python3}" bench/torch_gpu.py "${quick[@]}" --tf32 --what steps --steps barlow-r18 --repeats 3 --out "$RES/torch-tf32.json"
want kernels && step "webgpu kernels (stock, ours 4x4, 4x4 and 8x8 blocked, with and without prefetch, vec4 loads, Winograd)" 90 gpu-kernels.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes stock,ours:4x4,ours:4x4:blocked,ours:8x8:blocked,ours:4x4:blocked:prefetch,ours:8x8:blocked:prefetch,ours:4x4:vec4,ours:8x8:blocked:prefetch:vec4,ours:winograd,ours:8x8:blocked:prefetch:vec4:winograd --what kernels --repeats 3 --out "$RES/gpu-kernels.json"
want steps && step "webgpu ours steps" 100 gpu-ours-steps.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours --what steps --repeats 3 --per-repeat 2 --out "$RES/gpu-ours.json"
want variants && step "webgpu ours barlow step, variants (8x8 blocked with prefetch, with and without vec4 loads; Winograd everywhere)" 45 gpu-variants.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours:8x8:blocked:prefetch:vec4,ours:8x8:blocked:prefetch,ours:winograd --what steps --steps barlow-r18 --repeats 3 --per-repeat 2 --out "$RES/gpu-variants.json"
want tune && step "webgpu ours barlow step, tuned (every GEMM variant on every conv GEMM, direct or Winograd per 3x3 stride-1 pass; rows saved as measured)" 90 gpu-tuned.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours:tuned --what steps --steps barlow-r18 --repeats 3 --per-repeat 2 --out "$RES/gpu-tuned.json"
want auto && step "webgpu ours auto tiles: barlow step + profile" 75 gpu-auto.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours:auto --what steps,profile --steps barlow-r18 --profile barlow-r18 "${dawn_prof[@]}" --repeats 3 --per-repeat 2 --out "$RES/gpu-auto.json"
want stock && step "webgpu stock barlow step" 30 gpu-stock.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes stock --what steps --steps barlow-r18 --repeats 2 --per-repeat 1 --warmup 1 --out "$RES/gpu-stock.json"
want profile && step "webgpu ours: per-kernel profile of the barlow step" 35 gpu-profile.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours --what profile --profile barlow-r18 "${dawn_prof[@]}" --warmup 1 --out "$RES/gpu-profile.json"
want clocks && step "webgpu ours: conv GPU time after idle vs behind a burst" 25 gpu-clocks.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours --what clocks "${dawn_prof[@]}" --out "$RES/gpu-clocks.json"
want rest && step "webgpu ours: dino-twins and vit steps, one timed step each" 120 gpu-rest.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours --what steps --steps dinotwins-r18,barlow-vit --repeats 1 --per-repeat 1 --warmup 1 --out "$RES/gpu-rest.json"
want submit && step "webgpu ours barlow step, 128 dispatches per submit" 60 gpu-submit128.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --modes ours --what steps --steps barlow-r18 --repeats 3 --per-repeat 2 --flag WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=128 --out "$RES/gpu-submit128.json"
want micro && step "webgpu: issue cost of an add by tensor size" 40 gpu-micro.txt "$NODE" "$carry/gpu.cjs" "${quick[@]}" --what micro --out "$RES/gpu-micro.json"
if want cpuprof; then
  step "webgpu ours barlow step under node --cpu-prof" 60 gpu-cpuprof.txt "$NODE" --cpu-prof --cpu-prof-dir="$work/prof" --cpu-prof-interval 500 "$carry/gpu.cjs" "${quick[@]}" --modes ours --what steps --steps barlow-r18 --warmup 1 --repeats 1 --per-repeat 2
  for f in "$work"/prof/*.cpuprofile; do [[ -f "$f" ]] && gzip -c "$f" > "$RES/step.cpuprofile.gz"; done
fi
pack
log "done; results in $OUT/results.tar"
rm -rf "$work"
