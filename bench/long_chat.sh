#!/usr/bin/env bash
# bench/long_chat.sh — `make bench-long-chat`: the time a very long conversation takes before the
# model runs, Switchyard against llama-server on the same model file. A chat of N short messages
# (LONG_SIZES, default 1000 2000 4000 8000) goes to /v1/chat/completions of each server; both
# render the chat template and tokenise the prompt, then refuse it (400: longer than the context,
# 4096), so what is timed is rendering plus tokenising, which is where llama.cpp's special-token
# partition grows with the square of the messages (src/workers/llama/tok.h: our worker tokenises
# long prompts in pieces). Each size LONG_RUNS times (3) per server, interleaved; prints the
# medians and the prompt's token count each server reported. Knobs: LONG_SIZES, LONG_RUNS,
# LONG_MODEL_FILE (a GGUF with a chatml template; default the tests' tiny-qwen2, made with
# tests/models.sh if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
sizes=${LONG_SIZES:-1000 2000 4000 8000}
runs=${LONG_RUNS:-3}
out=build/bench/long-chat
mkdir -p "$out"
model=${LONG_MODEL_FILE:-build/test-models/tiny-qwen2.gguf}
[ -f "$model" ] || tests/models.sh build/test-models >/dev/null
export SWITCHYARD_STATE_DIR=$PWD/$out/state
printf 'log_level: warn\nmodels:\n  - {name: m, file: %s, context: 4096, parallel: 1, keep_alive: -1}\n' \
  "$PWD/$model" >"$out/sy.yaml"
sp=$((20000 + RANDOM % 20000)) lp=$((40000 + RANDOM % 20000))
serve "http://127.0.0.1:$sp" "$out/switchyard.log" build/bin/switchyard --config "$out/sy.yaml" \
  --port "$sp" --worker-dir build/bin
sy_pid=$serve_pid
"$prefix/bin/llama-server" -m "$model" -c 4096 -np 1 --host 127.0.0.1 --port "$lp" --no-webui \
  >"$out/llama-server.log" 2>&1 &
ls_pid=$!
trap 'kill "$sy_pid" "$ls_pid" 2>/dev/null; wait 2>/dev/null || true' EXIT
wait_healthy "http://127.0.0.1:$lp" "$ls_pid"

body() { # N: a chat of N alternating short messages, then one user turn
  local i
  printf '{"model":"m","max_tokens":1,"messages":['
  for ((i = 0; i < $1; i++)); do
    if ((i % 2)); then printf '{"role":"assistant","content":"m%d"},' "$i"; else
      printf '{"role":"user","content":"m%d"},' "$i"
    fi
  done
  printf '{"role":"user","content":"hi"}]}'
}
one() { # port file -> "seconds tokens"
  local r
  r=$(curl -s -o "$out/reply.json" -w '%{time_total}' -H 'content-type: application/json' \
    -d @"$2" "http://127.0.0.1:$1/v1/chat/completions")
  echo "$r $(grep -o 'prompt has [0-9]*\|([0-9]* tokens)\|request ([0-9]*' "$out/reply.json" | grep -o '[0-9]*' | head -1)"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2) * 1000}'; }
one "$sp" <(body 2) >/dev/null # load the model
echo "| messages | prompt tokens, switchyard / llama-server | switchyard, median ms | llama-server, median ms |"
echo "|---|---|---|---|"
for n in $sizes; do
  body "$n" >"$out/body-$n.json"
  : >"$out/sy-$n.txt" >"$out/ls-$n.txt"
  for _ in $(seq 1 "$runs"); do
    one "$sp" "$out/body-$n.json" >>"$out/sy-$n.txt"
    one "$lp" "$out/body-$n.json" >>"$out/ls-$n.txt"
  done
  printf '| %s | %s / %s | %.0f | %.0f |\n' "$n" "$(awk 'NR==1{print $2}' "$out/sy-$n.txt")" \
    "$(awk 'NR==1{print $2}' "$out/ls-$n.txt")" "$(cut -d' ' -f1 "$out/sy-$n.txt" | median)" \
    "$(cut -d' ' -f1 "$out/ls-$n.txt" | median)"
done
echo "($runs runs per size and server, interleaved; $(cpu_line); load average $(cut -d' ' -f1-3 /proc/loadavg); model $model)"
