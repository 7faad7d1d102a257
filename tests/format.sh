#!/usr/bin/env bash
# tests/format.sh — every C file of ours against the checked-in .clang-format (Debian's
# clang-format). `tests/format.sh` lists the files that are not formatted and fails; `--fix`
# formats them in place (make format). The file list is git's: whatever we track, nothing vendored.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (scripts/install-deps.sh)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f"); done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted (make format): %s\n' "${bad[@]}"
  exit 1
fi
echo "format: ${#files[@]} files formatted"
