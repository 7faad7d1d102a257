#!/usr/bin/env bash
# tests/run.sh — the whole test suite, run by `make test` after the normal and the ASan+UBSan
# builds: unit tests (both builds), integration tests against the real daemon and workers (both
# builds), the official OpenAI and Anthropic Node SDKs against the daemon, and the status page
# in headless Chromium. Models are made
# here, at test time, with tools/mkmodel (tests/models.sh). ../shared/testdata is used when present (SWITCHYARD_TESTDATA).
# Ends with one line "N passed, N failed" counting suites; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
prefix=$(deps/engines.sh print-prefix)
export SWITCHYARD_VOCAB_DIR="$prefix/share/vocab"
export SY_TEMPLATES_DIR="$prefix/../src/llama.cpp/models/templates" # real chat templates (tests/jinja, toolcall detection)
testdata=${SWITCHYARD_TESTDATA:-$root/../shared/testdata}
export SWITCHYARD_TESTDATA="$testdata"
models=$root/build/test-models
export SWITCHYARD_STATE_DIR=$root/build/test-state # remembered measurements: not the user's
rm -rf "$SWITCHYARD_STATE_DIR"
mkdir -p "$models"
passed=0 failed=0
declare -a failures=()

suite() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok"
  else failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED"; fi
}

suite "daemon layering (tests/layers.sh)" tests/layers.sh
# the test models (tests/models.sh, shared with `make itest`), made again every run
suite "format (clang-format, tests/format.sh)" tests/format.sh
suite "make test models (tools/mkmodel)" tests/models.sh "$models"

for t in build/bin/unit/test_*; do
  [ -x "$t" ] && suite "unit $(basename "$t")" "$t"
done

# Sanitizer reports land in files; any report from a sanitized process fails the suite.
san_dir=$root/build-asan/san-logs
rm -rf "$san_dir" && mkdir -p "$san_dir"
export ASAN_OPTIONS="log_path=$san_dir/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$san_dir/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
san_clean() {
  if compgen -G "$san_dir/*" >/dev/null; then
    echo "sanitizer reports:"; head -c 20000 "$san_dir"/*; return 1
  fi
}
for t in build-asan/bin/unit/test_*; do
  [ -x "$t" ] && suite "unit (asan) $(basename "$t")" "$t"
done
# our Jinja interpreter against llama.cpp's own engine, on every reference template (tests/jinja)
suite "jinja diff (asan sy-jinja vs llama.cpp's engine)" tests/jinja/diff.sh build-asan/bin/sy-jinja build/bin/jinja-oracle
suite "unit (asan): no sanitizer reports" san_clean
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

suite "jinja diff (sy-jinja vs llama.cpp's engine)" tests/jinja/diff.sh build/bin/sy-jinja build/bin/jinja-oracle
# JSON Schema / tool-call grammars accepted and enforced by llama.cpp's grammar sampler
suite "grammar check (llama.cpp's sampler)" build/bin/grammar-check "$prefix/share/vocab/ggml-vocab-qwen2.gguf"

# make install / uninstall into a temp DESTDIR, the installed daemon run from there, the unit checked
suite "install (make install, the installed daemon, systemd-analyze, make uninstall)" tests/install.sh "$models"

# whisper.cpp's own whisper-server (third-party, built once into the engine cache): the integration
# tests run it as an external engine behind the proxy (ext_whisper)
suite "whisper-server (deps/whisper-server.sh)" deps/whisper-server.sh
td=(); [ -d "$testdata" ] && td=(--testdata "$testdata")
[ -d "$testdata" ] || echo "note: $testdata not found: tests that need ../shared/testdata are skipped"
suite "integration" build/bin/itest --daemon build/bin/switchyard --models "$models" --engines "$prefix" "${td[@]}"

export ASAN_OPTIONS="log_path=$san_dir/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$san_dir/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
suite "integration (asan+ubsan daemon and worker)" build/bin/itest --daemon build-asan/bin/switchyard --models "$models" --engines "$prefix" "${td[@]}"
suite "integration (asan): no sanitizer reports" san_clean
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

compat() {
  (cd tests/compat && { [ -d node_modules/openai ] && [ -d node_modules/@anthropic-ai/sdk ] &&
    [ -d node_modules/ollama ] && [ -d node_modules/ws ] || npm ci --silent --no-audit --no-fund; }) || return 1
  local cfg; cfg=$(mktemp /tmp/switchyard-compat-XXXXXX.yaml)
  printf 'log_level: warn\nmodels:\n  - name: chat\n    file: %s\n    context: 512\n  - name: embed\n    file: %s\n  - name: tools\n    file: %s\n    context: 1024\n' \
    "$models/tiny-qwen2.gguf" "$models/tiny-bert.gguf" "$models/tiny-qwen3.gguf" >"$cfg"
  printf '  - name: vlm\n    file: %s\n    mmproj: %s\n    context: 512\n  - name: rerank\n    file: %s\n    context: 128\n' \
    "$models/tiny-vlm.gguf" "$models/tiny-vlm-mmproj.gguf" "$models/tiny-bert-rerank.gguf" >>"$cfg"
  printf '  - name: alm\n    file: %s\n    mmproj: %s\n    context: 1024\n' \
    "$models/tiny-alm.gguf" "$models/tiny-alm-mmproj.gguf" >>"$cfg"
  printf '  - {name: whisper, engine: whisper, file: %s}\n' "$models/tiny-whisper.bin" >>"$cfg"
  printf '  - {name: think, file: %s, context: 512}\n' "$models/tiny-qwq.gguf" >>"$cfg"
  # ollama-js's own chat model: its keep_alive test unloads it, so no other suite uses it
  printf '  - {name: ollama, file: %s, context: 512, request_keep_alive: true}\n' "$models/tiny-qwen2.gguf" >>"$cfg"
  # a WebSocket echo server as an external engine: /upstream/wsecho/... (websocket.test.mjs)
  printf '  - name: wsecho\n    engine: external\n    external:\n      argv: [node, %s, "${PORT}"]\n      health: {path: /health, status: 200, timeout: 60s}\n' \
    "$root/tests/compat/ws_echo_engine.mjs" >>"$cfg"
  # a voice pipeline for the Realtime API (realtime.test.mjs): whisper, chat, the built-in voice
  # (its own asr and llm models: realtime.test.mjs checks they are idle after a client vanishes,
  # which other files' requests must not disturb when node runs files in parallel)
  printf '  - {name: rt-whisper, engine: whisper, file: %s}\n  - {name: rt-chat, file: %s, context: 1024}\n' \
    "$models/tiny-whisper.bin" "$models/tiny-qwen2.gguf" >>"$cfg"
  printf 'pipelines:\n  - {name: talk, kind: voice, asr: rt-whisper, llm: rt-chat, tts: speak, voice: en-us, max_tokens: 40, temperature: 0, sentence_chars: 12}\n' >>"$cfg"
  printf '  - {name: talk-tools, kind: voice, llm: tools, tts: speak, max_tokens: 256, temperature: 0}\n' >>"$cfg"
  local fifo; fifo=$(mktemp -u /tmp/switchyard-ready-XXXXXX); mkfifo "$fifo"
  build/bin/switchyard --config "$cfg" --port 0 --ready-fd 3 3>"$fifo" & local pid=$!
  local port; read -r port <"$fifo"; rm -f "$fifo"
  [ -n "$port" ] || { kill $pid 2>/dev/null; rm -f "$cfg"; return 1; }
  # the Anthropic SDK's baseURL is the server root (it adds /v1 itself)
  SWITCHYARD_URL="http://127.0.0.1:$port/v1" SWITCHYARD_ANTHROPIC_URL="http://127.0.0.1:$port" \
    SWITCHYARD_THINK_MODEL=think SWITCHYARD_CHAT_MODEL=chat SWITCHYARD_EMBED_MODEL=embed SWITCHYARD_TOOLS_MODEL=tools SWITCHYARD_VLM_MODEL=vlm \
    SWITCHYARD_RERANK_MODEL=rerank SWITCHYARD_ALM_MODEL=alm SWITCHYARD_WHISPER_MODEL=whisper \
    SWITCHYARD_OLLAMA_HOST="http://127.0.0.1:$port" SWITCHYARD_OLLAMA_MODEL=ollama \
    SWITCHYARD_WS_ECHO_MODEL=wsecho SWITCHYARD_REALTIME_MODEL=talk SWITCHYARD_REALTIME_TOOLS_MODEL=talk-tools SWITCHYARD_REALTIME_STEP_MODELS=rt-whisper,rt-chat SWITCHYARD_TESTDATA="$testdata" \
    node --test tests/compat/; local rc=$?
  kill -TERM $pid; wait $pid; local st=$?
  rm -f "$cfg"
  [ $rc -eq 0 ] && [ $st -eq 0 ]
}
if [ -f tests/compat/package.json ]; then suite "compat (openai and anthropic node sdks, ollama-js)" compat; fi
# the status page in headless Chromium (puppeteer-core); writes docs/img/status-page.png
suite "browser (the status page in headless chromium, tests/browser)" tests/browser/run.sh "$models"

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
