# shellcheck shell=bash
# bench/lib.sh — shell helpers the bench scripts share (sourced, not run; run from the repository
# root). bench/lib.c is the C programs'.

# engine_env: prefix, the engine build scripts ask deps/engines.sh for (GPU=... picks it), and
# SWITCHYARD_VOCAB_DIR, its vocabularies (mkmodel's and the tests' tokenizers).
engine_env() {
  prefix=$(deps/engines.sh print-prefix)
  export SWITCHYARD_VOCAB_DIR="$prefix/share/vocab"
}

# wait_up URL PID: bounded wait (60 s) for a server to answer URL with 200; fails at once when
# the process PID has exited.
wait_up() {
  for _ in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# wait_healthy BASE PID: wait_up BASE/health PID.
wait_healthy() { wait_up "$1/health" "$2"; }

# serve BASE LOG CMD...: start the server CMD in the background (its output to LOG), stop it when
# the script exits, and wait_healthy BASE; fails, with the end of LOG, when it does not come up.
# Sets serve_pid.
serve() {
  local base=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  serve_pid=$!
  trap 'kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true' EXIT
  wait_healthy "$base" "$serve_pid" && return 0
  echo "bench: ${1##*/} did not come up at $base; the end of $log:" >&2
  tail -5 "$log" >&2
  return 1
}

# cpu_line: "N cores: the CPU's model name", for a result's header.
cpu_line() { echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"; }

# bench_model PRESET TYPE THREADS: prints build/bench/PRESET-TYPE.gguf, which mkmodel writes first
# (random weights, its log on stderr) when it is not there. Needs SWITCHYARD_VOCAB_DIR.
bench_model() {
  local m=build/bench/$1-$2.gguf
  if [ ! -f "$m" ]; then
    echo "bench: making $m (random weights)" >&2
    mkdir -p build/bench
    build/bin/mkmodel --preset "$1" --type "$2" --threads "$3" -o "$m" >&2 || return 1
  fi
  echo "$m"
}

# serve_voice NAME ASR LLM: a daemon with a voice pipeline "talk" (whisper ASR, the LLM LLM, the
# built-in voice; 48 greedy tokens, sentences of SENTENCE_CHARS (60) characters), its config and
# state under $out with NAME in their names; started with serve (sets serve_pid), its port in port.
# Needs out. The bench scripts of a voice turn (voice_turn.sh, realtime.sh) share it.
serve_voice() {
  local name=$1 asr=$2 llm=$3
  cat >"$out/$name.yaml" <<YAML
log_level: warn
models:
  - {name: whisper, engine: whisper, file: $asr, keep_alive: -1}
  - {name: lm, file: $llm, context: 1024, parallel: 1, keep_alive: -1}
pipelines:
  - {name: talk, kind: voice, asr: whisper, llm: lm, tts: speak, max_tokens: 48, temperature: 0,
     sentence_chars: ${SENTENCE_CHARS:-60}}
YAML
  local e
  e=$(deps/engines.sh print-prefix)
  export SWITCHYARD_VOCAB_DIR=$e/share/vocab SY_TEMPLATES_DIR=$e/../src/llama.cpp/models/templates
  export SWITCHYARD_STATE_DIR=$PWD/$out/state-$name
  port=$((20000 + RANDOM % 20000))
  serve "http://127.0.0.1:$port" "$out/$name-daemon.log" \
    build/bin/switchyard --port "$port" --config "$out/$name.yaml" --worker-dir build/bin
}
