#!/usr/bin/env bash
# bench/speech_asr.sh — `make bench-speech-asr`: speech to text, Switchyard's whisper worker (through
# the daemon's /v1/audio/transcriptions) vs whisper.cpp's own whisper-server, built from the same
# pinned whisper.cpp sources on the same ggml (the engine cache's), on the same random-weight model
# file (tools/mkwhisper, real "base" shape by default), the same audio, threads and decoding
# settings, timed by the same client (curl, upload to response end). The two are asked in turn,
# run after run, so a change in the machine's load hits both alike. Prints a markdown table; the
# raw times and texts go to build/bench/speech.json.
#
# Knobs: SPEECH_PRESET (mkwhisper preset, base), SPEECH_SECONDS (60), SPEECH_AUDIO (a 16 kHz mono
# WAV to use as is), BENCH_THREADS (nproc), BENCH_RUNS (3), SPEECH_SERVER_FA (1: leave
# whisper-server's flash attention on, its default; the worker runs without it, so by default the
# server is started with -nfa to match), SPEECH_OMP (the OMP_WAIT_POLICY both run under, passive;
# "default" leaves the environment alone — see below), SPEECH_TEMPERATURE (0: whisper's fallback
# ladder, the API's default; above 0: that temperature and no ladder, on both), JOBS (build jobs
# for whisper-server, 1).
#
# Why OMP_WAIT_POLICY: ggml's CPU backend runs on OpenMP, whose idle threads spin between graph
# computations. On a machine whose cores are busy with other work, the spinning thread takes the
# core the main thread needs (whisper decodes token by token, with sampling in between), and a
# transcription gets 10-20x slower. libgomp spins less when a process has more OpenMP threads than
# cores, which whisper-server reaches after its first request (each HTTP thread gets its own
# team) and a one-thread worker never does, so under load the two would be compared on libgomp's
# heuristics, not on their work. Both get the same explicit policy instead.
#
# Matched decoding: greedy, best_of 5, temperature 0 with whisper's fallback ladder (+0.2), the
# language given (en: no detection pass), no token timestamps, no VAD, JSON answers. A random-weight
# model never decodes confidently, so at temperature 0 every 30 s window goes down the whole
# ladder (6 temperatures, 5 sampled decoders from 0.2 on): SPEECH_TEMPERATURE=0.2 times one pass.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. bench/lib.sh
prefix=$(deps/engines.sh print-prefix)
root=$(dirname "$prefix")
preset=${SPEECH_PRESET:-base}
seconds=${SPEECH_SECONDS:-60}
threads=${BENCH_THREADS:-$(nproc)}
runs=${BENCH_RUNS:-3}
omp=${SPEECH_OMP:-passive}
temp=${SPEECH_TEMPERATURE:-0}
inc=0.2; [ "$temp" = 0 ] || inc=0
[ "$omp" = default ] || export OMP_WAIT_POLICY=$omp
out=build/bench
mkdir -p "$out"
export SWITCHYARD_STATE_DIR=$PWD/$out/state

# whisper-server: built once from the cache's whisper.cpp sources on the installed ggml (deps/whisper-server.sh)
wsrv=$(deps/whisper-server.sh)

model=$out/whisper-$preset.bin
if [ ! -f "$model" ]; then
  echo "bench: making $model (random weights, $preset shape)" >&2
  build/bin/mkwhisper --preset "$preset" -o "$model"
fi

# the audio: jfk.wav (real speech) repeated to the length, or a speech-like signal (voiced
# syllables with a wandering pitch and pauses) when ../shared is not there
audio=${SPEECH_AUDIO:-$out/speech-${seconds}s.wav}
if [ -z "${SPEECH_AUDIO:-}" ] && [ ! -f "$audio" ]; then
  build/bin/bench-asr --make-audio "$audio" "$seconds" "${SWITCHYARD_TESTDATA:-../shared/testdata}/jfk.wav"
fi

port=$((20000 + RANDOM % 20000))
fa=(-nfa); [ "${SPEECH_SERVER_FA:-0}" = 1 ] && fa=()
"$wsrv" -m "$model" -t "$threads" -bo 5 "${fa[@]}" --host 127.0.0.1 --port "$port" >"$out/whisper-server.log" 2>&1 &
wpid=$!
cfg=$out/speech.yaml
printf 'log_level: warn\nmodels:\n  - {name: bench, engine: whisper, file: %s, threads: %d, keep_alive: -1}\n' \
  "$PWD/$model" "$threads" >"$cfg"
sport=$((port + 1))
build/bin/switchyard --config "$cfg" --port "$sport" >"$out/switchyard-speech.log" 2>&1 &
spid=$!
trap 'kill $wpid $spid 2>/dev/null; wait $wpid $spid 2>/dev/null' EXIT
wait_up "http://127.0.0.1:$port/" $wpid || { echo "bench: whisper-server did not start" >&2; tail "$out/whisper-server.log" >&2; exit 1; }
wait_healthy "http://127.0.0.1:$sport" $spid || { echo "bench: switchyard did not start" >&2; exit 1; }

ask() { # which, run -> "seconds" on stdout, the answer in $out/speech-<which>-<run>.json
  local body=$out/speech-$1-$2.json
  if [ "$1" = server ]; then
    curl -sS -o "$body" -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/inference" -F "file=@$audio" \
      -F language=en -F response_format=json -F temperature="$temp" -F temperature_inc=$inc -F token_timestamps=false
  else
    curl -sS -o "$body" -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$sport/v1/audio/transcriptions" \
      -F "file=@$audio" -F model=bench -F language=en -F response_format=json -F temperature="$temp"
  fi | { read -r code t; [ "$code" = 200 ] || { echo "bench: $1 answered $code: $(head -c 300 "$body")" >&2; exit 1; }; echo "$t"; }
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: warm-up (switchyard loads the model), then $runs runs each, in turn; load average $load0" >&2
ask server warm >/dev/null
ask switchyard warm >/dev/null
times_s=() times_w=()
for i in $(seq 1 "$runs"); do
  times_w+=("$(ask server "$i")")
  times_s+=("$(ask switchyard "$i")")
  echo "bench: run $i: whisper-server ${times_w[-1]} s, switchyard ${times_s[-1]} s" >&2
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# the table and build/bench/speech.json (bench/speech/asr_report.c; texts compared without white
# space: whisper-server ends each segment with a newline, switchyard joins them)
build/bin/bench-asr --report "$out" "$runs" "$seconds" "$model" "$threads" "$load0" "$load1" \
  "${SPEECH_SERVER_FA:-0}" "$omp" "$temp" "${times_s[*]}" "${times_w[*]}"
