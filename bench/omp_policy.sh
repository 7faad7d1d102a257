#!/usr/bin/env bash
# bench/omp_policy.sh — `make bench-omp`: the llama worker's decode speed under each OpenMP wait
# policy, alone on a quiet machine and with a second worker decoding beside it on the same cores
# (the case Switchyard exists for: several models loaded, speech next to chat). ggml's CPU backend
# runs every op of a graph between OpenMP barriers, so how a waiting thread waits (spin, sleep, or
# spin then sleep) decides both numbers. llama-server, same sources and request, is the reference
# for the quiet case (it runs with libgomp's own default). A benchmark, never a test.
#
# Policies (the environment the daemon is started with; it passes it to its workers):
#   passive   OMP_WAIT_POLICY=PASSIVE (sleep at once)        active  OMP_WAIT_POLICY=ACTIVE (spin)
#   spin-N    GOMP_SPINCOUNT=N (spin N rounds, then sleep)   default nothing set: the daemon's choice
# Each runs with the daemon's CPU shares off (SWITCHYARD_CPU_SHARE=off: every worker keeps all its
# threads, as before the shares existed) and on (+share: busy workers split the cores, cpu_share.h).
# Knobs: BENCH_PRESET (qwen2-0.5b), BENCH_TYPE (q8_0), BENCH_TOKENS (96), BENCH_RUNS (3),
# OMP_POLICIES ("passive spin-300000 spin-30000 spin-3000 active default"). Table on stdout,
# raw JSON in build/bench/omp/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
preset=${BENCH_PRESET:-qwen2-0.5b}
type=${BENCH_TYPE:-q8_0}
tokens=${BENCH_TOKENS:-96}
runs=${BENCH_RUNS:-3}
policies=${OMP_POLICIES:-passive spin-300000 spin-3000 active default passive+share default+share}
threads=$(nproc)
out=build/bench/omp
mkdir -p "$out"
export SWITCHYARD_STATE_DIR=$PWD/build/bench/state
model=$(bench_model "$preset" "$type" "$threads")

tps() { jq -r .single_stream_tok_s "$1"; }
bench() { build/bin/bench --url "$1" --model "$2" --tokens "$tokens" --streams 1 --runs "$runs" --latency-runs 1; }

port=$((20000 + RANDOM % 20000))
"$prefix/bin/llama-server" -m "$model" -c 1024 -np 1 -t "$threads" -tb "$threads" --host 127.0.0.1 \
  --port "$port" --no-webui >"$out/llama-server.log" 2>&1 &
lpid=$!
wait_healthy "http://127.0.0.1:$port" $lpid || { echo "omp_policy: llama-server did not start" >&2; exit 1; }
bench "http://127.0.0.1:$port" x >"$out/llama-server.json"
kill $lpid; wait $lpid 2>/dev/null || true
ref=$(tps "$out/llama-server.json")

cfg=$out/omp.yaml
printf 'log_level: warn\nmodels:\n' >"$cfg"
for m in a b; do
  printf '  - {name: %s, file: %s, context: 1024, parallel: 1, threads: %d, keep_alive: -1}\n' \
    "$m" "$PWD/$model" "$threads" >>"$cfg"
done
echo "| policy | alone tok/s | vs llama-server | two workers side by side: a + b tok/s |"
echo "|---|---|---|---|"
for pol in $policies; do
  env=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u SWITCHYARD_CPU_SHARE)
  case $pol in *+share) ;; *) env+=(SWITCHYARD_CPU_SHARE=off) ;; esac
  case ${pol%+share} in
    passive) env+=(OMP_WAIT_POLICY=PASSIVE) ;;
    active) env+=(OMP_WAIT_POLICY=ACTIVE) ;;
    spin-*) env+=(GOMP_SPINCOUNT="${pol#spin-}") ;;
    default) ;;
    *) echo "omp_policy: unknown policy $pol" >&2; exit 2 ;;
  esac
  port=$((port + 1))
  "${env[@]}" build/bin/switchyard --config "$cfg" --port "$port" >"$out/switchyard-$pol.log" 2>&1 &
  spid=$!
  url=http://127.0.0.1:$port
  wait_healthy "$url" $spid || { echo "omp_policy: switchyard did not start" >&2; exit 1; }
  bench "$url" a >"$out/$pol-alone.json"
  bench "$url" a >"$out/$pol-a.json" & ba=$!
  bench "$url" b >"$out/$pol-b.json"
  wait $ba
  kill $spid; wait $spid 2>/dev/null || true
  alone=$(tps "$out/$pol-alone.json") a=$(tps "$out/$pol-a.json") b=$(tps "$out/$pol-b.json")
  awk -v p="$pol" -v x="$alone" -v r="$ref" -v a="$a" -v b="$b" \
    'BEGIN { printf "| %s | %.1f | %.2f | %.1f + %.1f = %.1f |\n", p, x, x / r, a, b, a + b }'
done
echo
echo "llama-server alone: $ref tok/s ($model, $threads threads, $tokens tokens, $runs runs each)"
