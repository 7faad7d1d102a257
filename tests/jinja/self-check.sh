#!/usr/bin/env bash
# self-check.sh — render every template in TEMPLATES (default: llama.cpp's models/templates) with
# every context in CONTEXTS (default: tests/jinja/contexts/) through ME (build/bin/sy-jinja) and
# through ORACLE (a build of llama.cpp's own engine with the same CLI, e.g. tests/jinja/oracle.cpp),
# and report where output or exit status differ.
#   ORACLE=build/bin/jinja-oracle tests/jinja/self-check.sh [-v]
# The semantic corner cases (printing, repr, tojson, whitespace, scoping, errors, ...):
#   TEMPLATES=tests/jinja/snippets CONTEXTS=tests/jinja/snippet-contexts tests/jinja/self-check.sh
set -u
cd "$(dirname "$0")/../.."
ME=${ME:-build/bin/sy-jinja}
ORACLE=${ORACLE:-build/bin/jinja-oracle}
TEMPLATES=${TEMPLATES:-$HOME/.cache/switchyard/engines-v0.4.0-whisper-0.3.1-cpu-ae07386047c8/src/llama.cpp/models/templates}
export SY_JINJA_NOW=${SY_JINJA_NOW:-1735689600}
VERBOSE=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
declare -A bad
for t in "$TEMPLATES"/*.jinja; do
  for c in ${CONTEXTS:-tests/jinja/contexts}/*.json; do
    timeout 10 "$ORACLE" --template "$t" --context "$c" >"$tmp/o.out" 2>"$tmp/o.err"; orc=$?
    timeout 10 "$ME" --template "$t" --context "$c" >"$tmp/m.out" 2>"$tmp/m.err"; mrc=$?
    if [ $orc -eq $mrc ] && cmp -s "$tmp/o.out" "$tmp/m.out"; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
      bad[$(basename "$t")]+=" $(basename "$c" .json)"
      if [ -n "$VERBOSE" ]; then
        echo "=== $(basename "$t") / $(basename "$c"): oracle rc=$orc, sy-jinja rc=$mrc"
        head -c 300 "$tmp/o.err"; head -c 300 "$tmp/m.err"
        diff <(cat "$tmp/o.out") <(cat "$tmp/m.out") | head -10
      fi
    fi
  done
done
for k in "${!bad[@]}"; do echo "MISMATCH $k:${bad[$k]}"; done | sort
echo "pass=$pass fail=$fail"
[ $fail -eq 0 ]
