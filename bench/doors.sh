#!/usr/bin/env bash
# bench/doors.sh — `make bench-doors`: the per-request cost of each front door (issue 15). The
# same one-turn conversation goes through /v1/chat/completions, /v1/messages (Anthropic) and
# /v1/responses (OpenAI Responses) on the same model, interleaved (chat, messages, responses,
# chat, …), non-streamed, greedy, max_tokens 1. The engine's work is the same for all three (the
# same rendered prompt: after the first request the prompt cache keeps all but its last token, so
# each request decodes one token and samples one), so the difference of the medians is the
# difference of the doors' own time (parse, translate, answer). Prints the medians and the
# differences to chat. Knobs: DOORS_RUNS (requests per door, 200), DOORS_MODEL_FILE (a GGUF;
# default the tests' tiny-qwen2, a chatml model without reasoning, so that every door renders
# the same prompt; made with tests/models.sh if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
runs=${DOORS_RUNS:-200}
out=build/bench
mkdir -p "$out"
model=${DOORS_MODEL_FILE:-build/test-models/tiny-qwen2.gguf}
[ -f "$model" ] || tests/models.sh build/test-models >/dev/null
export SWITCHYARD_STATE_DIR=$PWD/$out/doors-state
cfg=$out/doors.yaml
printf 'log_level: warn\nmodels:\n  - {name: m, file: %s, context: 1024, parallel: 1, keep_alive: -1}\n' \
  "$PWD/$model" >"$cfg"
port=$((20000 + RANDOM % 20000))
base=http://127.0.0.1:$port
serve "$base" "$out/doors.log" build/bin/switchyard --config "$cfg" --port "$port" --worker-dir build/bin

q='Name three colours of the rainbow.'
chat='{"model":"m","messages":[{"role":"user","content":"'$q'"}],"max_tokens":1,"temperature":0}'
msgs='{"model":"m","messages":[{"role":"user","content":"'$q'"}],"max_tokens":1,"temperature":0}'
resp='{"model":"m","input":[{"role":"user","content":"'$q'"}],"max_output_tokens":1,"temperature":0,"store":false}'
one() { # path body -> seconds; anything but a 200 stops the benchmark
  local r
  r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H 'content-type: application/json' \
    -H 'anthropic-version: 2023-06-01' -d "$2" "$base$1")
  [ "${r%% *}" = 200 ] || { echo "bench: $1 answered ${r%% *}" >&2; exit 1; }
  echo "${r#* }"
}
for _ in 1 2 3; do one /v1/chat/completions "$chat" >/dev/null; done # load, warm the cache
: >"$out/doors-chat.txt" >"$out/doors-messages.txt" >"$out/doors-responses.txt"
for _ in $(seq 1 "$runs"); do
  one /v1/chat/completions "$chat" >>"$out/doors-chat.txt"
  one /v1/messages "$msgs" >>"$out/doors-messages.txt"
  one /v1/responses "$resp" >>"$out/doors-responses.txt"
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2) * 1000}'; }
p90() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int(NR*0.9)] * 1000}'; }
mc=$(median "$out/doors-chat.txt")
echo "| door | median ms | p90 ms | median − chat (ms) |"
echo "|---|---|---|---|"
for d in chat messages responses; do
  m=$(median "$out/doors-$d.txt")
  printf '| %s | %.2f | %.2f | %+.2f |\n' "$d" "$m" "$(p90 "$out/doors-$d.txt")" "$(echo "$m - $mc" | bc -l)"
done
echo "($runs requests per door, interleaved; $(nproc) cores; model $model)"
