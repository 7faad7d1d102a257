#!/usr/bin/env bash
# bench/voice_turn.sh — `make bench-voice`: the end-to-end latency of a voice turn (pipeline.c)
# split by stage, on this machine: speech in (jfk.wav from ../shared/testdata when present, else 3 s
# of tone) → asr (whisper tiny's shapes, see ASR_MODEL) → llm (tiny-qwen2, random weights, 48 tokens) →
# tts (the built-in espeak-ng voice) → pcm16 out, streamed. Each run's stage timings come from the
# stream's usage chunk (usage.switchyard_timings); the client also times its first audio chunk and
# its last byte (the client: bench/speech/bench_voice.c, build/bin/bench-voice). Knobs: BENCH_RUNS (10),
# SENTENCE_CHARS (60: about one short spoken sentence), ASR_MODEL.
# See docs/PERFORMANCE.md "Voice turn".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
out=build/bench
mkdir -p "$out"
models=build/test-models
for f in tiny-whisper.bin tiny-qwen2.gguf; do
  [ -f "$models/$f" ] || { echo "bench-voice: $models/$f is missing (tests/run.sh make_models writes it)" >&2; exit 1; }
done
td=${SWITCHYARD_TESTDATA:-../shared/testdata}
wav=$td/jfk.wav
[ -f "$wav" ] || wav=""
# ASR_MODEL: a whisper.cpp file. Default: $td/for-tests-ggml-tiny.bin (whisper tiny's real shapes
# and vocabulary, empty weights: the encoder and decoder run at tiny's real cost and the transcript
# is empty), else tiny-whisper.bin (random weights: it decodes junk with temperature fallbacks up to
# its token limit, many seconds on real speech, so it gets the 3 s tone instead).
if [ -z "${ASR_MODEL:-}" ] && [ -f "$td/for-tests-ggml-tiny.bin" ]; then
  asr=$(realpath "$td/for-tests-ggml-tiny.bin")
else
  asr=${ASR_MODEL:-$PWD/$models/tiny-whisper.bin}
  [ -n "${ASR_MODEL:-}" ] || wav=""
fi
serve_voice voice "$asr" "$PWD/$models/tiny-qwen2.gguf"
echo "$(cpu_line); input: ${wav:-3 s tone}; asr: $asr"
build/bin/bench-voice --url "http://127.0.0.1:$port" --runs "${BENCH_RUNS:-10}" ${wav:+--wav "$wav"}
