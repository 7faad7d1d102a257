#!/usr/bin/env bash
# tests/layers.sh — the daemon's wings keep their layering (docs/ARCHITECTURE.md, "Wings"): a grep
# over #include lines, no build needed (`make layers`; a suite of tests/run.sh). Fails, naming the
# lines, when
#   - a file outside src/daemon/api/ (main.c aside) includes an api/ header: the endpoints sit on
#     top, nothing below may call up into them (move the shared piece down instead);
#   - a file outside its wing includes a wing's private header (api/api_int.h, config/matrix_int.h);
#   - a daemon file includes a wing's header by its bare name ("plan.h" instead of "sched/plan.h",
#     which compiles from the same folder but hides the arrow from this check).
set -uo pipefail
cd "$(dirname "$0")/.."
bad=0
report() { # what, lines
  [ -n "$2" ] || return 0
  echo "layers: $1:"; echo "$2" | sed 's/^/  /'; bad=1
}
incs() { grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$@" 2>/dev/null; }

report "a lower wing includes api/" \
  "$(incs src/daemon --include='*.[ch]' | grep -E '"api/' | grep -vE '^src/daemon/(api/|main\.c:)')"
report "a private header used outside its wing" \
  "$(incs src tests bench tools --include='*.[ch]' | grep -E '"api/api_int\.h"' | grep -v '^src/daemon/api/';
     incs src tests bench tools --include='*.[ch]' | grep -E '"config/matrix_int\.h"' | grep -v '^src/daemon/config/')"
wing_headers=$(cd src/daemon && ls */*.h | sed 's#.*/##' | sort -u | paste -sd'|')
report "a wing's header included by its bare name (write \"wing/name.h\")" \
  "$(incs src/daemon --include='*.[ch]' | grep -E "\"($wing_headers)\"")"
[ $bad -eq 0 ] && echo "layers: ok ($(ls -d src/daemon/*/ | wc -l) wings; nothing below api/ includes it)"
exit $bad
