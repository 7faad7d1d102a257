#!/usr/bin/env bash
# bench/run.sh — `make bench`: switchyard vs llama.cpp's llama-server, built from the same pinned
# sources, same model file, same threads, same context per sequence and parallel slots, driven by
# the same client (build/bin/bench). Prints a markdown table; raw JSON goes to build/bench/.
# Knobs: BENCH_PRESET (mkmodel preset, default qwen2-0.5b), BENCH_TYPE (q8_0), BENCH_THREADS (nproc),
# BENCH_CTX (per sequence, 1024), BENCH_NP (8), BENCH_TOKENS (128), BENCH_RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
preset=${BENCH_PRESET:-qwen2-0.5b}
type=${BENCH_TYPE:-q8_0}
threads=${BENCH_THREADS:-$(nproc)}
ctx=${BENCH_CTX:-1024}
np=${BENCH_NP:-8}
tokens=${BENCH_TOKENS:-128}
runs=${BENCH_RUNS:-3}
out=build/bench
mkdir -p "$out"
export SWITCHYARD_STATE_DIR=$PWD/$out/state
model=$(bench_model "$preset" "$type" "$threads")

port=$((20000 + RANDOM % 20000))
echo "bench: llama-server on :$port" >&2
"$prefix/bin/llama-server" -m "$model" -c $((ctx * np)) -np "$np" -t "$threads" -tb "$threads" \
  -b 512 -ub 512 --host 127.0.0.1 --port "$port" --no-webui >"$out/llama-server.log" 2>&1 &
lpid=$!
wait_healthy "http://127.0.0.1:$port" $lpid || { echo "bench: llama-server did not start" >&2; tail "$out/llama-server.log" >&2; exit 1; }
build/bin/bench --url "http://127.0.0.1:$port" --model bench --tokens "$tokens" --streams "$np" --runs "$runs" >"$out/llama-server.json"
kill $lpid; wait $lpid 2>/dev/null || true

cfg=$out/bench.yaml
printf 'log_level: warn\nmodels:\n  - name: bench\n    file: %s\n    context: %d\n    parallel: %d\n    threads: %d\n    batch: 512\n    keep_alive: -1\n' \
  "$PWD/$model" "$ctx" "$np" "$threads" >"$cfg"
port=$((port + 1))
echo "bench: switchyard on :$port" >&2
build/bin/switchyard --config "$cfg" --port "$port" >"$out/switchyard.log" 2>&1 &
spid=$!
wait_healthy "http://127.0.0.1:$port" $spid || { echo "bench: switchyard did not start" >&2; exit 1; }
build/bin/bench --url "http://127.0.0.1:$port" --model bench --tokens "$tokens" --streams "$np" --runs "$runs" >"$out/switchyard.json"
kill $spid; wait $spid 2>/dev/null || true

build/bin/bench --compare "$out/switchyard.json" "$out/llama-server.json" \
  --label "model $model, $threads threads, context $ctx/sequence, $np slots" || { cat "$out"/*.json; }
