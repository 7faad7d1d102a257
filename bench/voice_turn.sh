#!/usr/bin/env bash
# bench/voice_turn.sh — `make bench-voice`: the end-to-end latency of a voice turn (pipeline.c)
# split by stage, on this machine: speech in (jfk.wav from ../shared/testdata when present, else 3 s
# of tone) → asr (whisper tiny's shapes, see ASR_MODEL) → llm (tiny-qwen2, random weights, 48 tokens) →
# tts (the built-in espeak-ng voice) → pcm16 out, streamed. Each run's stage timings come from the
# stream's usage chunk (usage.switchyard_timings); the client also times its first audio chunk and
# its last byte. Knobs: BENCH_RUNS (10), SENTENCE_CHARS (60: about one short spoken sentence), ASR_MODEL.
# See docs/PERFORMANCE.md "Voice turn".
set -euo pipefail
cd "$(dirname "$0")/.."
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
cat >"$out/voice.yaml" <<YAML
log_level: warn
models:
  - {name: whisper, engine: whisper, file: $asr, keep_alive: -1}
  - {name: lm, file: $PWD/$models/tiny-qwen2.gguf, context: 1024, parallel: 1, keep_alive: -1}
pipelines:
  - {name: talk, kind: voice, asr: whisper, llm: lm, tts: speak, max_tokens: 48, temperature: 0,
     sentence_chars: ${SENTENCE_CHARS:-60}}
YAML
E=$(deps/engines.sh print-prefix)
export SWITCHYARD_VOCAB_DIR=$E/share/vocab SY_TEMPLATES_DIR=$E/../src/llama.cpp/models/templates
export SWITCHYARD_STATE_DIR=$PWD/$out/state-voice
port=$((20000 + RANDOM % 20000))
build/bin/switchyard --port "$port" --config "$out/voice.yaml" --worker-dir build/bin >"$out/voice-daemon.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && break
  sleep 0.1
done
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); input: ${wav:-3 s tone}; asr: $asr"
python3 - "$port" "${BENCH_RUNS:-10}" "$wav" <<'PY'
import base64, http.client, io, json, math, statistics, struct, sys, time
port, runs, wav = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if wav:
    audio = open(wav, "rb").read()
else:  # 3 s of a 220 Hz tone, 16 kHz mono s16
    n = 48000
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / 16000))) for i in range(n))
    audio = b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", 2 * n) + pcm
body = json.dumps({"model": "talk", "stream": True, "modalities": ["text", "audio"],
                   "audio": {"voice": "alloy", "format": "pcm16"}, "seed": 1,
                   "messages": [{"role": "user", "content": [{"type": "input_audio",
                                 "input_audio": {"data": base64.b64encode(audio).decode(), "format": "wav"}}]}]})

def turn():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.monotonic()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]}")
    first_audio, timings, samples = None, None, 0
    for line in r:
        if not line.startswith(b"data: {"):
            continue
        ev = json.loads(line[6:])
        ch = (ev.get("choices") or [{}])[0]
        a = ch.get("delta", {}).get("audio", {})
        if "data" in a:
            samples += len(base64.b64decode(a["data"])) // 2
            if first_audio is None:
                first_audio = time.monotonic() - t0
        if "error" in ev:
            raise SystemExit(f"error: {ev}")
        if ev.get("usage"):
            timings = ev["usage"]["switchyard_timings"]
    end = time.monotonic() - t0
    c.close()
    return timings, first_audio * 1000, end * 1000, samples / 24000

turn()  # loads the three models
rows = [turn() for _ in range(runs)]
keys = ["stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "first_audio_ms", "total_ms"]
med = {k: statistics.median(r[0][k] for r in rows) for k in keys}
print("run  stt_ms  llm_first_token_ms  tts_first_audio_ms  first_audio_ms  total_ms  first_audio-stt_ms")
for i, r in enumerate(rows):
    t = r[0]
    print(f"{i + 1:3d} {t['stt_ms']:7.1f} {t['llm_first_token_ms']:19.1f} {t['tts_first_audio_ms']:19.1f} "
          f"{t['first_audio_ms']:15.1f} {t['total_ms']:9.1f} {t['first_audio_ms'] - t['stt_ms']:19.1f}")
print(f"{runs} streamed voice turns (after one warm-up), medians in ms:")
for k in keys:
    print(f"  {k:20s} {med[k]:8.1f}   (min {min(r[0][k] for r in rows):.1f}, max {max(r[0][k] for r in rows):.1f})")
print(f"  first_audio - stt     {statistics.median(r[0]['first_audio_ms'] - r[0]['stt_ms'] for r in rows):8.1f}")
print(f"  client first audio   {statistics.median(r[1] for r in rows):8.1f}")
print(f"  client last byte     {statistics.median(r[2] for r in rows):8.1f}")
print(f"  audio out            {statistics.median(r[3] for r in rows):8.2f} s")
PY
