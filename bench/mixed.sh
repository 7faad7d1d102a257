#!/usr/bin/env bash
# bench/mixed.sh — `make bench-mixed`: three models over one memory budget that holds two, 16
# clients each sticking to one model for a few requests, then moving on (bench/mixed.c). Counts
# swaps from /metrics. Knobs: MIXED_CLIENTS (16), MIXED_REQUESTS (12 per client), MIXED_STICK (3),
# MIXED_TOKENS (16), MIXED_GUARD (scheduling.swap_guard, default 0 = no thrash guard),
# BENCH_THREADS (nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
out=build/bench
mkdir -p "$out"
export SWITCHYARD_STATE_DIR=$PWD/$out/state-mixed
rm -rf "$SWITCHYARD_STATE_DIR"
threads=${BENCH_THREADS:-$(nproc)}
model=$(bench_model qwen2-0.5b q8_0 "$threads")
# each model: context 1024 x 4 slots, estimated ~0.88 GiB; the budget holds two, not three
cfg=$out/mixed.yaml
{
  printf 'log_level: warn\nmemory: {budget: 1900MiB}\nscheduling: {swap_guard: %s}\n' "${MIXED_GUARD:-0}"
  printf 'defaults: {context: 1024, parallel: 4, threads: %d, keep_alive: -1}\nmodels:\n' "$threads"
  for m in m1 m2 m3; do printf '  - {name: %s, file: %s}\n' "$m" "$PWD/$model"; done
} >"$cfg"
port=$((20000 + RANDOM % 20000))
serve "http://127.0.0.1:$port" "$out/mixed-switchyard.log" build/bin/switchyard --config "$cfg" --port "$port"
build/bin/bench mixed --url "http://127.0.0.1:$port" --models m1,m2,m3 --clients "${MIXED_CLIENTS:-16}" \
  --requests "${MIXED_REQUESTS:-12}" --stick "${MIXED_STICK:-3}" --tokens "${MIXED_TOKENS:-16}" | tee "$out/mixed.json"
