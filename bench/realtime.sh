#!/usr/bin/env bash
# bench/realtime.sh — `make bench-realtime`: OpenAI's Realtime API (/v1/realtime) on this machine,
# turn by turn: a speech clip streamed into a voice pipeline's session, the server VAD ends the
# turn, and the time from the end of speech to the first audio byte is split by stage (asr → llm
# first token → tts first audio), median of BENCH_RUNS turns (5), one session per turn. The models:
# ASR_MODEL (default: ../shared/testdata/for-tests-ggml-tiny.bin, whisper tiny's real shapes with
# empty weights, so the encoder runs at tiny's real cost and the transcript is empty; else the
# random tiny-whisper.bin), tiny-qwen2 (random weights, 48 tokens), the built-in espeak voice.
# The same script runs on a GPU machine (GPU=cuda make bench-realtime); LLM_MODEL / ASR_MODEL name
# real models there. See docs/PERFORMANCE.md "Realtime".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
out=build/bench
mkdir -p "$out"
models=build/test-models
td=${SWITCHYARD_TESTDATA:-../shared/testdata}
wav=${WAV:-$td/jfk.wav}
if [ ! -f "$wav" ]; then # no clip: speech made with espeak-ng
  wav=$out/realtime-speech.wav
  espeak-ng -w "$wav" "And so my fellow Americans, ask not what your country can do for you."
fi
if [ -z "${ASR_MODEL:-}" ] && [ -f "$td/for-tests-ggml-tiny.bin" ]; then
  asr=$(realpath "$td/for-tests-ggml-tiny.bin")
else
  asr=${ASR_MODEL:-$PWD/$models/tiny-whisper.bin}
fi
llm=${LLM_MODEL:-$PWD/$models/tiny-qwen2.gguf}
serve_voice realtime "$asr" "$llm"
echo "$(cpu_line); input: $wav; asr: $asr; llm: $llm"
# a first turn loads the three models; it is not counted
build/bin/bench-realtime --port "$port" --model talk --wav "$wav" --runs 1 --silence-ms "${SILENCE_MS:-1500}" >/dev/null || true
build/bin/bench-realtime --port "$port" --model talk --wav "$wav" --runs "${BENCH_RUNS:-5}" --silence-ms "${SILENCE_MS:-1500}"
