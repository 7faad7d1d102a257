#!/usr/bin/env bash
# scripts/gpu-check.sh — the GPU-truth check (docs/GPU-CHECK.md): random-weight models of real
# shapes, a matrix whose total demand is ~3x the memory budget, and four measurements
# (build/bin/gpucheck, bench/gpucheck/check.c): footprint estimated vs measured, a randomized mixed workload, swap time
# vs a llama-server cold start, decode tok/s vs llama-server.
#
#   scripts/gpu-check.sh --cpu [--seconds 60]       here (make bench-gpu-check): small real shapes,
#                                                   RAM budget = demand / 3; results in bench/results/
#   scripts/gpu-check.sh --gpu [--seconds 45]       on a lent NVIDIA card, after scripts/gpu-prepare.sh
#                                                   packed .gpu/ here: builds the CUDA engines and
#                                                   workers there, writes Qwen3-8B/14B/32B, Qwen2.5-7B
#                                                   Q4_K_M + Qwen3-Embedding-0.6B + whisper, runs all
#                                                   four; results in $OUT (or --out)
#   --phase build|measure|all (gpu; default all)    split across two calls on one warm machine
#   --limit SECONDS                                 stop starting phases after this long (gpu default 570)
# Never deletes anything outside its own output and model folders.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode= seconds= out= phase=all limit=
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) mode=cpu ;;
    --gpu) mode=gpu ;;
    --seconds) seconds=$2; shift ;;
    --out) out=$2; shift ;;
    --phase) phase=$2; shift ;;
    --limit) limit=$2; shift ;;
    *) echo "usage: scripts/gpu-check.sh --cpu|--gpu [--seconds N] [--out DIR] [--phase build|measure|all] [--limit S]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$mode" ] || { echo "gpu-check: give --cpu or --gpu" >&2; exit 2; }
start=$(date +%s)
# --limit: the GPU run must end inside one 10-minute device command; here nothing is short of time
[ -n "$limit" ] || { [ "$mode" = gpu ] && limit=570 || limit=7200; }
deadline=$((start + limit))
log() { echo "gpu-check [$(( $(date +%s) - start ))s] $*" >&2; }

if [ "$mode" = cpu ]; then
  prefix=$(deps/engines.sh print-prefix)
  export SWITCHYARD_VOCAB_DIR=$prefix/share/vocab
  bin=build/bin
  models=build/gpu-check/models
  out=${out:-bench/results/gpu-check-cpu}
  mkdir -p "$models" "$out"
  threads=$(nproc)
  # small real shapes, Q4_K_M as downloaded models are; --fast: seconds, not minutes
  mk() { [ -f "$models/$1.gguf" ] || $bin/mkmodel --preset "$2" --type q4_k_m --fast -o "$models/$1.gguf" 2>>"$out/mkmodel.log"; }
  log "models (random weights, real shapes)"
  mk qwen3-0.6b qwen3-0.6b
  mk qwen2.5-0.5b qwen2-0.5b
  mk qwen3-embedding-0.6b qwen3-embedding-0.6b
  # whisper: the test suite's narrow shape (width 64). Random weights never end a segment, so each
  # request decodes a whole window (~60 s here even so): measured in phase 1, left out of the workload
  [ -f "$models/whisper-narrow.bin" ] || $bin/mkwhisper -o "$models/whisper-narrow.bin"
  $bin/gpucheck --write-wav "$models/tone-3s.wav" 3
  M=$root/$models
  cat >"$out/entries.json" <<JSON
[
 {"name": "qwen3-0.6b", "kind": "chat", "file": "$M/qwen3-0.6b.gguf", "context": 2048, "parallel": 2},
 {"name": "qwen3-0.6b-long", "kind": "chat", "file": "$M/qwen3-0.6b.gguf", "context": 8192, "parallel": 2},
 {"name": "qwen2.5-0.5b", "kind": "chat", "file": "$M/qwen2.5-0.5b.gguf", "context": 2048, "parallel": 2},
 {"name": "qwen3-embedding-0.6b", "kind": "embed", "file": "$M/qwen3-embedding-0.6b.gguf", "context": 2048, "parallel": 2},
 {"name": "whisper-narrow", "kind": "transcribe", "file": "$M/whisper-narrow.bin"}
]
JSON
  export SY_TEMPLATES_DIR=$prefix/../src/llama.cpp/models/templates
  $bin/gpucheck --mode cpu --entries "$out/entries.json" --daemon $bin/switchyard --bin $bin \
    --load $bin/gpucheck-load --bench $bin/bench --llama-server "$prefix/bin/llama-server" \
    --audio "$models/tone-3s.wav" --out "$out" --seconds "${seconds:-60}" --clients 4 --tokens 8 \
    --threads "$threads" --decode-model qwen2.5-0.5b --decode-tokens 64 --decode-runs 1 --swap-runs 4 \
    --cold-runs 2 --no-transcribe-load --deadline "$deadline" | tee "$out/summary.txt"
  log "done: $out/summary.md"
  exit 0
fi

# ---- GPU mode: runs on the lent machine (no registry; what it needs came in .gpu/) ----
# Work happens in build-cuda/gpu-check; what comes back ($OUT: at most 8 files) is summary.md,
# results.json, gpu-check.log and one gpu-check-raw.tar.gz of the logs and raw JSON.
work=$root/build-cuda/gpu-check
[ -z "${GPU_CHECK_SIM:-}" ] || work=$root/build-sim/gpu-check
dest=${out:-${OUT:-}}
mkdir -p "$work" ${dest:+"$dest"}
# the log goes straight to $OUT too, and gpucheck mirrors results.json there after every phase:
# a command killed at its time limit runs no trap, and still brings back what was measured
exec > >(tee -a "$work/gpu-check.log" ${dest:+"$dest/gpu-check.log"}) 2>&1
collect() {
  [ -n "$dest" ] || return 0
  cp "$work/summary.md" "$work/results.json" "$dest/" 2>/dev/null || true
  tar -C "$work" --exclude=state --exclude=gpu-check.log -czf "$dest/gpu-check-raw.tar.gz" . 2>/dev/null || true
}
trap collect EXIT
out=$work
G=$root/.gpu
[ -d "$G/debs" ] && [ -f "$G/engines-src.tar.xz" ] || { echo "gpu-check: no .gpu/ (run scripts/gpu-prepare.sh here first, carry .gpu)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
sys=$G/sysroot
if [ ! -d "$sys" ]; then
  for f in "$G"/debs/*.deb; do dpkg -x "$f" "$sys"; done
fi
libs=$sys/usr/lib/x86_64-linux-gnu:$sys/lib/x86_64-linux-gnu
# GPU_CHECK_SIM=1: rehearse this whole path on a machine without a GPU (CPU engines from the usual
# cache, small presets under the big names, GPU_CHECK_CARD_MIB as the card) — plumbing only
sim=${GPU_CHECK_SIM:-}
if [ -n "$sim" ]; then
  gpu=cpu arch= B=build-sim
else
  gpu=cuda arch=90 B=build-cuda
  export SWITCHYARD_CACHE=$root/.gpu/cache
fi
export JOBS=$(nproc)
if [ "$phase" != measure ]; then
  log "engines: $gpu build ${arch:+for sm_$arch }($(nproc) jobs)"
  GPU=$gpu CUDA_ARCH=$arch SWITCHYARD_ENGINE_SRC=$G/engines-src.tar.xz deps/engines.sh >/dev/null ||
    { tail -50 "$(dirname "$(GPU=$gpu CUDA_ARCH=$arch deps/engines.sh print-prefix)")"/build-llama.log; exit 1; }
  log "workers (jansson from .gpu/sysroot; warnings not fatal: gcc 13 there, the tree is checked with 12)"
  C_INCLUDE_PATH=$sys/usr/include LIBRARY_PATH=$sys/usr/lib/x86_64-linux-gnu \
    make -j"$(nproc)" --no-print-directory GPU=$gpu CUDA_ARCH=$arch BUILD=$B WARN="-Wall -Wno-unused-parameter" \
      $B/bin/switchyard-llama $B/bin/switchyard-whisper $B/bin/llama-fit-params $B/bin/mkmodel $B/bin/mkwhisper >/dev/null
fi
prefix=$(GPU=$gpu CUDA_ARCH=$arch deps/engines.sh print-prefix)
# LD_LIBRARY_PATH only for what was linked against the carried libraries (not nvcc, cmake)
export SWITCHYARD_VOCAB_DIR=$prefix/share/vocab
models=$root/$B/models
mkdir -p "$models"
if [ "$phase" != measure ]; then
  log "models: Qwen3-32B/14B/8B, Qwen2.5-7B Q4_K_M, Qwen3-Embedding-0.6B, whisper large-v3 shape (in parallel)"
  # no GPU for the generator: it keeps the weights in RAM (not pinned memory) and writes them
  gen() {
    local preset=$1
    [ -n "$sim" ] && case $1 in qwen3-*b) preset=qwen3-0.6b ;; qwen2.5-7b) preset=qwen2-0.5b ;; esac
    [ -f "$models/$1.gguf" ] || CUDA_VISIBLE_DEVICES= LD_LIBRARY_PATH=$libs \
      $B/bin/mkmodel --preset "$preset" --type q4_k_m --fast --threads 4 -o "$models/$1.gguf"
  }
  pids=()
  for p in qwen3-32b qwen3-14b qwen3-8b qwen2.5-7b qwen3-embedding-0.6b; do gen $p & pids+=($!); done
  [ -f "$models/whisper-large-v3.bin" ] || $B/bin/mkwhisper -o "$models/whisper-large-v3.bin" $([ -n "$sim" ] || echo --large-v3) & pids+=($!)
  LD_LIBRARY_PATH=$libs "$G/bin/gpucheck" --write-wav "$models/tone-3s.wav" 3
  for p in "${pids[@]}"; do wait "$p"; done
  ls -la "$models"
  df -h "$models" | tail -1
fi
[ "$phase" = build ] && { log "build phase done"; exit 0; }

# entries: every file at a few context sizes until the estimated total is ~3x the card's memory
total_mib=${GPU_CHECK_CARD_MIB:-$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)}
LD_LIBRARY_PATH=$libs "$G/bin/gpucheck" --gpu-entries "$models" "$total_mib" "${sim:+16}" >"$out/entries.json"
left=$((deadline - $(date +%s)))
log "measuring ($left s left)"
# gpucheck itself links libcurl and jansson from .gpu/sysroot; it gives llama-server the environment without them
LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$G/bin/gpucheck" --mode gpu --entries "$out/entries.json" --daemon "$G/bin/switchyard" --bin $B/bin \
  --load "$G/bin/gpucheck-load" --bench "$G/bin/bench" --llama-server "$prefix/bin/llama-server" --lib-path "$libs" \
  --audio "$models/tone-3s.wav" --out "$out" --seconds "${seconds:-45}" --clients 16 --tokens 32 \
  --decode-model qwen2.5-7b-8k-x8 --decode-tokens 128 --decode-runs 1 --swap-runs 3 --cold-runs 1 \
  --footprint-max 5 --reserve 150 --deadline "$deadline" ${dest:+--mirror "$dest"} || log "gpucheck failed (rc $?)"
log "done"
