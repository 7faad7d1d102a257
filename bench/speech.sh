#!/usr/bin/env bash
# bench/speech.sh — `make bench-speech`: the built-in voice (espeak-ng) through /v1/audio/speech on
# a daemon with no models but the built-in `speak`. Knobs: BENCH_RUNS (5). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench
mkdir -p "$out/empty-models"
export SWITCHYARD_STATE_DIR=$PWD/$out/state-speech
port=$((20000 + RANDOM % 20000))
build/bin/switchyard --port "$port" --models-dir "$out/empty-models" --worker-dir build/bin >"$out/speech-daemon.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
  sleep 0.1
done
echo "espeak-ng $(dpkg-query -W -f='${Version}' libespeak-ng1 2>/dev/null || echo '?'), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
build/bin/bench-speech --url "http://127.0.0.1:$port" --runs "${BENCH_RUNS:-5}"
