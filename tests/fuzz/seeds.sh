#!/usr/bin/env bash
# tests/fuzz/seeds.sh DIR — fill DIR/<target>/ with each libFuzzer target's seed corpus:
# tests/fuzz/corpus/<target>/ when it exists (hand-made inputs), and what
# build-fuzz/seed_<name> (built from tests/fuzz/seed_<name>.c) writes for fuzz_<name>; for
# fuzz_jinja, llama.cpp's reference chat templates; for fuzz_gguf_header, the test models' headers.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: seeds.sh DIR}
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  mkdir -p "$out/$t"
  [ -d "tests/fuzz/corpus/$t" ] && cp -f tests/fuzz/corpus/"$t"/* "$out/$t/" 2>/dev/null || true
  # the Jinja target starts from llama.cpp's ~70 real chat templates
  if [ "$t" = fuzz_jinja ]; then
    tdir=${SY_TEMPLATES_DIR:-$(deps/engines.sh print-prefix)/../src/llama.cpp/models/templates}
    [ -d "$tdir" ] && cp -f "$tdir"/*.jinja "$out/$t/" 2>/dev/null || true
  fi
  # the GGUF header target starts from the test models' first 64 KiB (made by tests/models.sh)
  if [ "$t" = fuzz_gguf_header ]; then
    for f in build/test-models/*.gguf; do
      [ -f "$f" ] && head -c 65536 "$f" >"$out/$t/$(basename "$f")"
    done
  fi
  gen=build-fuzz/seed_${t#fuzz_}
  if [ -x "$gen" ]; then "$gen" "$out/$t"; fi
done
