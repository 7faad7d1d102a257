#!/usr/bin/env bash
# tests/fuzz/seeds.sh DIR — fill DIR/<target>/ with each libFuzzer target's seed corpus:
# tests/fuzz/corpus/<target>/ when it exists (hand-made inputs), and what
# build-fuzz/seed_<name> (built from tests/fuzz/seed_<name>.c) writes for fuzz_<name>.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: seeds.sh DIR}
for src in tests/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  mkdir -p "$out/$t"
  [ -d "tests/fuzz/corpus/$t" ] && cp -f tests/fuzz/corpus/"$t"/* "$out/$t/" 2>/dev/null || true
  gen=build-fuzz/seed_${t#fuzz_}
  if [ -x "$gen" ]; then "$gen" "$out/$t"; fi
done
