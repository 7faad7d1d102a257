#!/usr/bin/env bash
# bench/router.sh — `make bench-router`: what a router adds to a request. A daemon with a light model
# (tiny-qwen2, random weights) and a router `auto` whose classifier runs on it; the decision's time
# is the X-Switchyard-Route-Ms header (rules, classifier: acquiring the light model and its
# constrained generation). Compared with a plain 1-token request to the same light model, and with a
# decision made by a rule. Knobs: BENCH_RUNS (20), BENCH_MODELS (build/test-models). See
# docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
out=build/bench
models=${BENCH_MODELS:-build/test-models}
runs=${BENCH_RUNS:-20}
mkdir -p "$out"
[ -f "$models/tiny-qwen2.gguf" ] || { echo "bench-router: $models/tiny-qwen2.gguf is missing (tests/run.sh makes it)" >&2; exit 1; }
models=$(realpath "$models")
engine_env
export SWITCHYARD_STATE_DIR=$PWD/$out/state-router
cat >"$out/router.yaml" <<YAML
log_level: debug
models:
  - {name: light, file: $models/tiny-qwen2.gguf, context: 512, parallel: 1, pin: true}
routers:
  - name: auto
    routes: {light: light, heavy: light}
    rules: [{system_tag: '#heavy', route: heavy}]
    classifier: {model: light, routes: [light, heavy], timeout_ms: 30000}
    default: light
YAML
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
serve "$url" "$out/router-daemon.log" \
  build/bin/switchyard --config "$out/router.yaml" --port "$port" --worker-dir build/bin
# chat body: model, optional system text, user text; 1 token, greedy
body() { printf '{"model":"%s","messages":[%s{"role":"user","content":"%s"}],"max_tokens":%d,"temperature":0%s}' \
  "$1" "${2:+{\"role\":\"system\",\"content\":\"$2\"\},}" "$3" "${MAX_TOKENS:-1}" "${ONE_EXTRA:+,$ONE_EXTRA}"; }
asks=("hello there" "translate cat to French" "what is 2+2" "write a poem about rust" "is this spam: WIN NOW"
  "summarise the meeting notes" "call the weather tool for Paris" "explain quicksort step by step")
# one request; prints "decision_ms total_ms route". MAX_TOKENS (1), ONE_EXTRA: more JSON fields
one() {
  local b; b=$(body "$@")
  curl -s -o /dev/null -D - -w 'total %{time_total}\n' "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "$b" | tr -d '\r' | awk '
      tolower($1) == "x-switchyard-route-ms:" { ms = $2 }
      tolower($1) == "x-switchyard-route:" { route = $2 }
      $1 == "total" { total = $2 * 1000 }
      END { printf "%s %.1f %s\n", ms == "" ? "-" : ms, total, route == "" ? "-" : route }'
}
one auto "" "warm up" >/dev/null
one light "" "warm up" >/dev/null
stats() { # name, then lines "decision total route" on stdin
  sort -n | awk -v name="$1" '{ d[NR] = $1; t[NR] = $2; sd += $1; st += $2 }
    END { if (!NR) exit; printf "%-28s n=%-3d decision ms: mean %8.3f  p50 %8.3f  max %8.3f | request ms: mean %6.1f\n",
          name, NR, sd / NR, d[int((NR + 1) / 2)], d[NR], st / NR }'
}
echo "router bench: $(cpu_line), light = tiny-qwen2 (random weights, Qwen2 vocabulary, 151936 tokens), $runs runs"
: >"$out/router-direct.txt"; : >"$out/router-direct6.txt"; : >"$out/router-rule.txt"; : >"$out/router-cls.txt"
for i in $(seq 1 "$runs"); do
  a=${asks[$(( (i - 1) % ${#asks[@]} ))]}
  one light "" "$a $i" | awk '{ print 0, $2, "direct" }' >>"$out/router-direct.txt"
  # what the classifier generates, without its grammar: 6 tokens
  MAX_TOKENS=6 ONE_EXTRA='"ignore_eos":true' one light "" "$a $i" | awk '{ print 0, $2, "direct" }' \
    >>"$out/router-direct6.txt"
  one auto "#heavy" "$a $i" >>"$out/router-rule.txt"
  one auto "" "$a $i" >>"$out/router-cls.txt"
done
stats "direct to light (no router)" <"$out/router-direct.txt"
stats "direct, 6 tokens, no grammar" <"$out/router-direct6.txt"
stats "auto, decided by a rule" <"$out/router-rule.txt"
stats "auto, decided by classifier" <"$out/router-cls.txt"
echo "routes the classifier chose: $(awk '{ print $3 }' "$out/router-cls.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ',' | sed 's/,$//')"
# the engine's own timings (worker log): generation ms per token with and without the grammar
awk '/llama:light: generate [0-9]+: chat prompt/ { id = $5; sub(":", "", id); g[id] = /constrained by a grammar/ }
     /llama:light: generate [0-9]+: (stop|length) after/ {
       id = $5; sub(":", "", id); split($8, pt, "+"); n = pt[2]; ms = $12
       if (n < 5) next
       if (g[id]) { cm += ms / n; cn++ } else { um += ms / n; un++ } }
     END { if (cn) printf "engine, generation ms per token: with the route grammar %.2f (%d runs), without %.2f (%d runs)\n",
                         cm / cn, cn, un ? um / un : 0, un }' "$out/router-daemon.log"
