#!/usr/bin/env bash
# bench/tts_neural.sh — `make bench-tts`: neural text to speech through /v1/audio/speech (the llama
# worker driving mtmd's audio-generation API, docs/TTS.md): time to the first audio byte and
# real-time factor for random-weight models written by mkmodel: the tiny Pocket-TTS and Qwen3-TTS
# pairs and, unless BENCH_TTS_BIG=0, a Qwen3-TTS pair of the real 0.6B shape (talker q8_0,
# projector f16 with the real code2wav widths; written once, ~1 GiB, kept in build/bench).
# Knobs: BENCH_RUNS (3 for the tiny pairs; the 0.6B pair runs once), BENCH_TEXTS (1 or 2: the
# one-sentence text, then also the five-sentence one), BENCH_TTS_THREADS (the models' `threads`;
# default: the worker's, all cores). See docs/PERFORMANCE.md, "Neural speech".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
out=build/bench
models=$out/tts-models
mkdir -p "$models"
E=$(deps/engines.sh print-prefix)
export SWITCHYARD_VOCAB_DIR=${SWITCHYARD_VOCAB_DIR:-$E/share/vocab}
export SWITCHYARD_STATE_DIR=$PWD/$out/state-tts
runs=${BENCH_RUNS:-3}
texts=${BENCH_TEXTS:-2}
big=${BENCH_TTS_BIG:-1}

mk() { # name, mkmodel args... : the pair NAME.gguf + NAME-mmproj.gguf, unless it exists
  local name=$1
  shift
  [ -f "$models/$name-mmproj.gguf" ] && return 0
  echo "bench: writing $name" >&2
  build/bin/mkmodel "$@" -o "$models/$name.gguf" --mmproj "$models/$name-mmproj.gguf" >"$out/mk-$name.log" 2>&1 ||
    { tail -3 "$out/mk-$name.log" >&2; exit 1; }
}
mk tiny-pocket --preset tiny-pockettts --seed 6
mk tiny-qwen3tts --preset tiny-qwen3tts --seed 6
[ "$big" = 1 ] && mk qwen3tts-0.6b --preset qwen3tts-0.6b --type q8_0

cfg=$out/tts.yaml
{
  printf 'log_level: warn\nbuiltin_voice: false\nmodels:\n'
  for m in tiny-pocket tiny-qwen3tts $([ "$big" = 1 ] && echo qwen3tts-0.6b); do
    printf '  - {name: %s, file: %s, mmproj: %s, context: 4096, keep_alive: -1%s}\n' \
      "$m" "$PWD/$models/$m.gguf" "$PWD/$models/$m-mmproj.gguf" \
      "${BENCH_TTS_THREADS:+, threads: $BENCH_TTS_THREADS}"
  done
} >"$cfg"
port=$((20000 + RANDOM % 20000))
serve "http://127.0.0.1:$port" "$out/tts-daemon.log" \
  build/bin/switchyard --config "$cfg" --port "$port" --worker-dir build/bin
echo "$(cpu_line), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for m in tiny-pocket tiny-qwen3tts $([ "$big" = 1 ] && echo qwen3tts-0.6b); do
  r=$runs t=$texts
  [ "$m" = qwen3tts-0.6b ] && r=1 t=1
  echo
  echo "### $m"
  build/bin/bench-speech --url "http://127.0.0.1:$port" --model "$m" --runs "$r" --texts "$t" --formats pcm --seed 1
done
