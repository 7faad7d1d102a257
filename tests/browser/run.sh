#!/usr/bin/env bash
# tests/browser/run.sh [MODELS_DIR] — the status page (web/ui/, served by the daemon) in a real
# browser: Debian's headless Chromium (/usr/bin/chromium, scripts/install-deps.sh) driven by
# puppeteer-core (npm, pinned in package.json + package-lock.json; PUPPETEER_SKIP_DOWNLOAD so
# nothing is downloaded: it drives the system browser). A suite of tests/run.sh ("browser");
# alone: `make browser`. Starts two daemons on the test models (build/test-models, made by
# tests/models.sh): one open, one with an API key, and runs ui.test.mjs against them. The
# screenshot the README shows is written to docs/img/ (SCREENSHOT_DIR to put it elsewhere).
# Chromium runs with --no-sandbox when we are root (its sandbox refuses to start as root; the
# page is our own, served from loopback).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
models=${1:-$root/build/test-models}
bin=${BIN:-build/bin}
export PUPPETEER_SKIP_DOWNLOAD=1
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null ||
  { echo "browser: ${CHROMIUM:-/usr/bin/chromium} not found (scripts/install-deps.sh installs Debian's chromium)"; exit 1; }
(cd tests/browser && { [ -d node_modules/puppeteer-core ] || npm ci --silent --no-audit --no-fund; }) || exit 1

tmp=$(mktemp -d /tmp/switchyard-browser-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

started_port=
start() { # config, name: the daemon's port in started_port ("" when it did not start)
  local fifo=$tmp/ready-$2; mkfifo "$fifo"
  SWITCHYARD_STATE_DIR=$tmp/state-$2 "$bin/switchyard" --config "$1" --port 0 --worker-dir "$bin" \
    --ready-fd 3 3>"$fifo" 2>>"$tmp/daemon.log" &
  pids+=($!)
  started_port=; read -r started_port <"$fifo"; rm -f "$fifo"
}

# the open daemon: a chat model to load from the page, an embedder pinned (loaded from the start),
# a vision model for the playground's images, whisper for the transcribe tab (and `speak`, built in)
cat >"$tmp/open.yaml" <<YAML
log_level: warn
models:
  - {name: chat, file: $models/tiny-qwen2.gguf, context: 512}
  - {name: embed, file: $models/tiny-bert.gguf, pin: true}
  - {name: whisper, engine: whisper, file: $models/tiny-whisper.bin}
YAML
[ -f "$models/tiny-vlm-mmproj.gguf" ] &&
  printf '  - {name: vlm, file: %s, mmproj: %s, context: 512}\n' "$models/tiny-vlm.gguf" "$models/tiny-vlm-mmproj.gguf" >>"$tmp/open.yaml"
cat >"$tmp/keyed.yaml" <<YAML
log_level: warn
api_keys: [sk-browser-test]
models:
  - {name: chat, file: $models/tiny-qwen2.gguf, context: 512}
YAML
start "$tmp/open.yaml" open; port=$started_port
start "$tmp/keyed.yaml" keyed; kport=$started_port
if [ -z "$port" ] || [ -z "$kport" ]; then echo "browser: a daemon did not start:"; cat "$tmp/daemon.log"; exit 1; fi

SWITCHYARD_URL="http://127.0.0.1:$port" SWITCHYARD_KEYED_URL="http://127.0.0.1:$kport" \
  SWITCHYARD_KEY=sk-browser-test SCREENSHOT_DIR="${SCREENSHOT_DIR:-$root/docs/img}" \
  CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" node --test tests/browser/
rc=$?
for p in "${pids[@]}"; do # a clean shutdown of both, as compat checks
  kill -TERM "$p"; wait "$p" || { echo "browser: a daemon exited with status $?"; rc=1; }
done
pids=()
[ $rc -eq 0 ] || { echo "--- daemon log"; tail -n 50 "$tmp/daemon.log"; }
exit $rc
