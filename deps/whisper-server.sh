#!/usr/bin/env bash
# deps/whisper-server.sh — whisper.cpp's own whisper-server, built from the engine cache's pinned
# whisper.cpp sources on the installed ggml (only that target), installed as $prefix/bin/whisper-server.
# Third-party code we do not link: the tests run it as an external engine behind the proxy
# (itest ext_whisper) and bench/speech_asr.sh compares our whisper worker with it. Cached beside
# the engines (a second run does nothing). JOBS (default: nproc) build jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(deps/engines.sh print-prefix)
root=$(dirname "$prefix")
out=$prefix/bin/whisper-server
[ -x "$out" ] && { echo "$out"; exit 0; }
wsb=$root/whisper-server-build
mkdir -p "$wsb" "$prefix/bin"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
echo "whisper-server: building into $wsb" >&2
cmake -S "$root/src/whisper.cpp" -B "$wsb/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DBUILD_SHARED_LIBS=OFF -DWHISPER_USE_SYSTEM_GGML=ON -DCMAKE_PREFIX_PATH="$prefix" \
      -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_SERVER=ON \
      -DCMAKE_POSITION_INDEPENDENT_CODE=ON >"$wsb/cmake.log" 2>&1 || { tail -30 "$wsb/cmake.log" >&2; exit 1; }
cmake --build "$wsb/build" -j "${JOBS:-$(nproc)}" --target whisper-server >"$wsb/build.log" 2>&1 ||
  { tail -30 "$wsb/build.log" >&2; exit 1; }
install -m 755 "$wsb/build/bin/whisper-server" "$out.part" && mv "$out.part" "$out"
echo "$out"
