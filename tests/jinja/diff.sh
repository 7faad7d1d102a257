#!/usr/bin/env bash
# tests/jinja/diff.sh [SY_JINJA_BIN] [ORACLE_BIN]
# Differential test of our Jinja interpreter against llama.cpp's own engine (jinja-oracle):
# every llama.cpp template x every fixture in tests/jinja/cases/*.json. Where the oracle renders,
# the outputs must be byte-identical; where it raises, ours must exit 1 too. Pairs listed in
# tests/jinja/known-diffs.txt ("template case reason", template without .jinja) are reported
# but do not fail the run. See tests/jinja/README.md.
#   SY_TEMPLATES_DIR   templates (default: the pinned llama.cpp's models/templates)
#   SY_DIFF_TEMPLATES  glob on the template name to run a subset (default *)
#   SY_DIFF_CASES      glob on the case name (default *)
#   SY_DIFF_VERBOSE=1  per-template table and the oracle's error messages
#   SY_DIFF_TIMEOUT    seconds per render (default 20)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sy=${1:-$root/build/bin/sy-jinja}
oracle=${2:-$root/build/bin/jinja-oracle}
tdir=${SY_TEMPLATES_DIR:-$("$root/deps/engines.sh" print-prefix)/../src/llama.cpp/models/templates}
tglob=${SY_DIFF_TEMPLATES:-*}
cglob=${SY_DIFF_CASES:-*}
verbose=${SY_DIFF_VERBOSE:-0}
tmo=${SY_DIFF_TIMEOUT:-20}
known_file=$here/known-diffs.txt

for b in "$sy" "$oracle"; do
  [ -x "$b" ] || { echo "diff.sh: $b is not an executable" >&2; exit 2; }
done
[ -d "$tdir" ] || { echo "diff.sh: no templates directory $tdir" >&2; exit 2; }

# strftime_now must give the same string on both sides: a fixed instant in a fixed zone.
export SY_JINJA_NOW=1767225600 TZ=UTC LC_ALL=C
# A sanitizer's report exits 1 by default, which would pass for "raised too": make it 66.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=66
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=66:print_stacktrace=1

declare -A known=()
if [ -f "$known_file" ]; then
  while read -r t c _; do
    [ -z "${t:-}" ] || [ "${t:0:1}" = "#" ] || known["$t $c"]=1
  done <"$known_file"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one-line, shell-quoted view of up to 60 bytes of FILE from 20 bytes before offset OFF (0-based)
snippet() {
  local start=$(($2 > 20 ? $2 - 20 : 0)) s
  s=$(tail -c +$((start + 1)) "$1" | head -c 60; echo .)
  printf '%q' "${s%.}"
}

total=0 matched=0 failed=0 known_hits=0 rendered=0 raised=0
declare -a stale=()
for tf in "$tdir"/*.jinja; do
  t=$(basename "$tf" .jinja)
  # shellcheck disable=SC2053
  [[ $t == $tglob ]] || continue
  t_ok=0 t_err=0 t_bad=0
  for cf in "$here"/cases/*.json; do
    c=$(basename "$cf" .json)
    # shellcheck disable=SC2053
    [[ $c == $cglob ]] || continue
    total=$((total + 1))
    timeout "$tmo" "$oracle" --template "$tf" --context "$cf" >"$work/o.out" 2>"$work/o.err"
    orc=$?
    timeout "$tmo" "$sy" --template "$tf" --context "$cf" >"$work/s.out" 2>"$work/s.err"
    src=$?
    why=""
    if [ $orc -ne 0 ]; then
      raised=$((raised + 1)) t_err=$((t_err + 1))
    else
      rendered=$((rendered + 1)) t_ok=$((t_ok + 1))
    fi
    if grep -qE 'Sanitizer|runtime error:' "$work/s.err"; then
      why="sanitizer report (exit $src): $(grep -m1 -E 'Sanitizer|runtime error:' "$work/s.err")"
    elif [ $orc -ne 0 ]; then
      [ $orc -eq 1 ] || why="oracle exit $orc: $(head -c 200 "$work/o.err")"
      [ -n "$why" ] || [ $src -eq 1 ] ||
        why="oracle raised ($(head -c 160 "$work/o.err")) but ours exit $src"
      [ "$verbose" = 1 ] && [ -z "$why" ] && echo "  raise $t $c: $(head -c 200 "$work/o.err")"
    else
      if [ $src -ne 0 ]; then
        why="ours exit $src: $(head -c 200 "$work/s.err")"
      elif ! cmp -s "$work/o.out" "$work/s.out"; then
        # first differing byte (cmp -l: 1-based); none means one output is a prefix of the other
        off=$(cmp -l "$work/o.out" "$work/s.out" 2>/dev/null | head -1 | awk '{print $1 - 1}')
        if [ -z "$off" ]; then
          a=$(stat -c %s "$work/o.out") b=$(stat -c %s "$work/s.out")
          off=$((a < b ? a : b))
        fi
        why="outputs differ at byte $off
      oracle: $(snippet "$work/o.out" "$off")
      ours:   $(snippet "$work/s.out" "$off")"
      fi
    fi
    if [ -z "$why" ]; then
      matched=$((matched + 1))
      [ -n "${known["$t $c"]:-}" ] && stale+=("$t $c")
    elif [ -n "${known["$t $c"]:-}" ]; then
      known_hits=$((known_hits + 1))
      echo "KNOWN    $t $c: ${why%%$'\n'*}"
    else
      failed=$((failed + 1)) t_bad=$((t_bad + 1))
      echo "MISMATCH $t $c: $why"
    fi
  done
  [ "$verbose" = 1 ] && printf '%-52s rendered %2d  raised %2d  mismatched %2d\n' "$t" $t_ok $t_err $t_bad
done

for s in "${stale[@]}"; do echo "note: known-diffs.txt lists '$s' but it matches now"; done
echo "jinja diff: $matched/$total matched ($rendered rendered, $raised raised by the oracle)," \
     "$failed mismatched, $known_hits known"
[ $total -gt 0 ] || { echo "diff.sh: no template x case pairs ran" >&2; exit 2; }
[ $failed -eq 0 ]
