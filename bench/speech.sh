#!/usr/bin/env bash
# bench/speech.sh — `make bench-speech`: the built-in voice (espeak-ng) through /v1/audio/speech on
# a daemon with no models but the built-in `speak`. Knobs: BENCH_RUNS (5). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
out=build/bench
mkdir -p "$out/empty-models"
export SWITCHYARD_STATE_DIR=$PWD/$out/state-speech
port=$((20000 + RANDOM % 20000))
serve "http://127.0.0.1:$port" "$out/speech-daemon.log" \
  build/bin/switchyard --port "$port" --models-dir "$out/empty-models" --worker-dir build/bin
echo "espeak-ng $(dpkg-query -W -f='${Version}' libespeak-ng1 2>/dev/null || echo '?'), $(cpu_line)"
build/bin/bench-speech --url "http://127.0.0.1:$port" --runs "${BENCH_RUNS:-5}"
