#!/usr/bin/env bash
# bench/agent.sh — `make bench-agent`: the prompt cache under agent conversations (issue 14),
# switchyard vs llama.cpp's llama-server (its defaults: cache_prompt on, its RAM prompt cache on),
# same model file, threads, context per sequence, slots and batch, the same client
# (build/bin/bench agent, bench/agent.c):
#   (a) one conversation: long system prompt, AGENT_TURNS turns of AGENT_TOKENS greedy tokens, each
#       answer appended before the next turn; TTFT of every turn, streamed;
#   (b) AGENT_CONVS conversations, each its own system prompt, AGENT_MULTI_TURNS turns each (4: its
#       turns 1 cost a cold prompt each, which keeps the bench under ~15 min), round-robin on
#       BENCH_NP slots (one request at a time);
#   (c) switchyard only, a fresh daemon: POST /api/unload after turn AGENT_AFTER; the next turn
#       (load + restore from disk) vs the same prompt cold; /api/load timed apart.
# The conversations go to /v1/completions as plain-text transcripts, the same tokens on both
# servers (AGENT_API=chat: the messages to /v1/chat/completions). llama-server cancels a request
# whose random-weight answer is not valid UTF-8 (its output parser, on both endpoints); such turns
# keep their TTFT and the table counts them (bench/agent.c). Both servers run side by side (idle when not asked); each run
# alternates which one goes first. Every run uses its own prompts. Prints markdown tables (medians
# over runs); raw JSON, one file per scenario, server and run, in build/bench/agent/.
# Knobs: BENCH_PRESET (mkmodel preset, qwen2-0.5b), BENCH_TYPE (f16), BENCH_THREADS (nproc),
# BENCH_CTX (per sequence, 4096), BENCH_NP (slots, 4), BENCH_BATCH (512), BENCH_RUNS (2),
# AGENT_TURNS (8), AGENT_MULTI_TURNS ((b)'s turns per conversation, 4), AGENT_CONVS (8),
# AGENT_TOKENS (16), AGENT_WORDS (system prompt, 900), AGENT_API (completions or chat),
# AGENT_AFTER (turns before the unload in (c), 4), AGENT_SCENARIOS (which of "chat multi reload":
# all), AGENT_LLAMA_SPIN: llama-server's OpenMP spin count, GOMP_SPINCOUNT (default 3000: what
# switchyard gives its workers unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, src/daemon/main.c;
# on a busy machine libgomp's default spin makes llama-server several times slower, which is not
# what this bench compares); "default" leaves libgomp's default.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
engine_env
preset=${BENCH_PRESET:-qwen2-0.5b}
type=${BENCH_TYPE:-f16}
threads=${BENCH_THREADS:-$(nproc)}
ctx=${BENCH_CTX:-4096}
np=${BENCH_NP:-4}
batch=${BENCH_BATCH:-512}
runs=${BENCH_RUNS:-2}
out=build/bench
dir=$out/agent
rm -rf "$dir"
mkdir -p "$dir"
export SWITCHYARD_STATE_DIR=$PWD/$out/state-agent
rm -rf "$SWITCHYARD_STATE_DIR"
model=$(bench_model "$preset" "$type" "$threads")
args=(--model bench --turns "${AGENT_TURNS:-8}" --convs "${AGENT_CONVS:-8}" --tokens "${AGENT_TOKENS:-16}"
  --words "${AGENT_WORDS:-900}" --after "${AGENT_AFTER:-4}" --api "${AGENT_API:-completions}")
endpoint=/v1/completions
[ "${AGENT_API:-completions}" = chat ] && endpoint=/v1/chat/completions

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
lurl=http://127.0.0.1:$port
echo "bench agent: llama-server on :$port" >&2
lenv=(env)
spin=${AGENT_LLAMA_SPIN:-3000}
[ -n "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ] && spin=default # the user's, for both servers
[ "$spin" = default ] || lenv+=(GOMP_SPINCOUNT="$spin")
"${lenv[@]}" "$prefix/bin/llama-server" -m "$model" -c $((ctx * np)) -np "$np" -t "$threads" -tb "$threads" \
  -b "$batch" -ub "$batch" --host 127.0.0.1 --port "$port" --no-webui >"$dir/llama-server.log" 2>&1 &
pids+=($!)
wait_healthy "$lurl" "${pids[-1]}" || { echo "bench agent: llama-server did not start" >&2; tail "$dir/llama-server.log" >&2; exit 1; }

cfg=$dir/agent.yaml
printf 'log_level: warn\nmodels:\n  - name: bench\n    file: %s\n    context: %d\n    parallel: %d\n    threads: %d\n    batch: %d\n    keep_alive: -1\n' \
  "$PWD/$model" "$ctx" "$np" "$threads" "$batch" >"$cfg"
sy_start() { # sy_start LOG: a switchyard daemon on a new port; sets surl
  port=$((port + 1))
  surl=http://127.0.0.1:$port
  echo "bench agent: switchyard on :$port" >&2
  build/bin/switchyard --config "$cfg" --port "$port" >"$1" 2>&1 &
  pids+=($!)
  wait_healthy "$surl" "${pids[-1]}" || { echo "bench agent: switchyard did not start" >&2; tail "$1" >&2; exit 1; }
}
sy_start "$dir/switchyard.log"
spid=${pids[-1]}

# one run of a scenario against one server: its JSON to $dir/SCENARIO-SERVER-RUN.json
one() { # one SCENARIO SERVER URL RUN
  echo "bench agent: ($1) $2, run $(($4 + 1)) of $runs" >&2
  local more=()
  [ "$1" = multi ] && more=(--turns "${AGENT_MULTI_TURNS:-4}")
  build/bin/bench agent --url "$3" --scenario "$1" --server "$2" --run "$4" "${args[@]}" "${more[@]}" \
    >"$dir/$1-$2-$4.json"
}
t0=$SECONDS
load0=$(cut -d" " -f1-3 /proc/loadavg)
scenarios=" ${AGENT_SCENARIOS:-chat multi reload} "
for ((r = 0; r < runs; r++)); do
  for sc in chat multi; do
    [[ $scenarios == *" $sc "* ]] || continue
    if ((r % 2 == 0)); then
      one "$sc" llama-server "$lurl" "$r"
      one "$sc" switchyard "$surl" "$r"
    else
      one "$sc" switchyard "$surl" "$r"
      one "$sc" llama-server "$lurl" "$r"
    fi
  done
done
kill "$spid"
wait "$spid" 2>/dev/null || true

# (c) on a fresh daemon with an empty state folder: only this conversation's states on disk
if [[ $scenarios == *" reload "* ]]; then
  rm -rf "$SWITCHYARD_STATE_DIR"
  sy_start "$dir/switchyard-reload.log"
  for ((r = 0; r < runs; r++)); do one reload switchyard "$surl" "$r"; done
fi
echo "bench agent: $((SECONDS - t0)) s of runs" >&2

build/bin/bench agent-table --dir "$dir" --runs "$runs" \
  --label "Model $model (random weights), $threads threads, context $ctx per sequence, $np slots, batch $batch, greedy, $endpoint; llama-server's GOMP_SPINCOUNT: $spin; $(cpu_line); load average (1, 5, 15 min) before the runs: $load0, after: $(cut -d" " -f1-3 /proc/loadavg); $((SECONDS - t0)) s of runs." \
  || { echo "bench agent: no table; the raw JSON is in $dir" >&2; exit 1; }
