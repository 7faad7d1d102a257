#!/usr/bin/env bash
# tests/install.sh — `make install` and `make uninstall` into a temp DESTDIR, and the installed
# daemon run from there: a suite of tests/run.sh (`make test`). Checks that
#  - install puts the daemon in bin/, the workers in libexec/switchyard/ (the engines linked in:
#    no engine library to install), docs, the unit, the sysusers file and the example config,
#    and that a second install keeps a config the admin changed;
#  - the example config loads (its models folder pointed at a temp one);
#  - the installed daemon, started from DESTDIR with the example config and a temp state dir,
#    finds its workers in ../libexec/switchyard by itself and answers a chat through them;
#  - `log_format: json` (the config) and `--log-format json` (the command line) give JSON lines
#    only, the workers' lines included;
#  - `systemd-analyze verify` accepts the installed unit and `systemd-analyze security` rates it
#    at most SECURITY_MAX (the score is stated in README.md, "Run it as a service"), and
#    `systemd-sysusers --dry-run` would create its user;
#  - uninstall leaves nothing of ours but a changed config.
# usage: tests/install.sh MODELS_DIR   (the test models, tests/models.sh; needs tiny-qwen2.gguf)
# KEEP=1 keeps the temp folder (its logs) for a look. Must never write outside its temp folder,
# nor leave a daemon running.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: tests/install.sh MODELS_DIR" >&2; exit 2; }
models=$(realpath "$1")
SECURITY_MAX=3.0 # systemd-analyze's exposure score (0 safest .. 10); 252 gives 1.5

tmp=$(mktemp -d /tmp/switchyard-install-XXXXXX)
root=$tmp/root
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT; [ -n "${KEEP:-}" ] && trap - EXIT
fail() { echo "install test: $*" >&2; exit 1; }

# make in this tree, quietly unless it fails
mk() { make --no-print-directory "$@" DESTDIR="$root" PREFIX=/usr >"$tmp/make.log" 2>&1 ||
  { cat "$tmp/make.log" >&2; fail "make $* failed"; }; }

echo "-- make install DESTDIR=... PREFIX=/usr"
mk install
for f in usr/bin/switchyard usr/libexec/switchyard/{switchyard-llama,switchyard-whisper,switchyard-espeak,llama-fit-params,mkmodel,sy-jinja} \
  usr/lib/systemd/system/switchyard.service usr/lib/sysusers.d/switchyard.conf \
  etc/switchyard/switchyard.yaml usr/share/doc/switchyard/{README.md,LICENSE,docs/CONFIG.md,switchyard.yaml.example}; do
  [ -e "$root/$f" ] || fail "install did not put /$f in place"
done
[ -x "$root/usr/bin/switchyard-llama" ] && fail "a worker is in bin/"
if ldd "$root"/usr/libexec/switchyard/switchyard-* | grep -E 'lib(llama|ggml|whisper|mtmd)' >&2; then
  fail "a worker needs an engine library at run time (they are linked in statically)"
fi
grep -q '^ExecStart=/usr/bin/switchyard serve --config /etc/switchyard/switchyard.yaml$' \
  "$root/usr/lib/systemd/system/switchyard.service" || fail "the unit's ExecStart has the wrong paths"

echo "-- an admin's config is kept"
echo "# mine" >>"$root/etc/switchyard/switchyard.yaml"
mk install
grep -q '^# mine$' "$root/etc/switchyard/switchyard.yaml" || fail "a second install overwrote the config"

echo "-- the installed daemon, from DESTDIR, with the example config"
mkdir -p "$tmp/models" "$tmp/state"
ln -s "$models/tiny-qwen2.gguf" "$tmp/models/tiny-qwen2.gguf"
cfg=$tmp/switchyard.yaml
sed -e "s|^models_dir: /var/lib/switchyard/models$|models_dir: $tmp/models|" \
  -e 's|^log_format: text |log_format: json |' "$root/usr/share/doc/switchyard/switchyard.yaml.example" >"$cfg"
grep -q "^models_dir: $tmp/models" "$cfg" && grep -q '^log_format: json ' "$cfg" ||
  fail "the example config no longer has models_dir and log_format lines"
daemon=$root/usr/bin/switchyard
"$daemon" --check --config "$cfg" | grep -q '^tiny-qwen2	' || fail "the example config does not load"
fifo=$tmp/ready
mkfifo "$fifo"
SWITCHYARD_STATE_DIR=$tmp/state "$daemon" serve --config "$cfg" --port 0 --ready-fd 3 \
  3>"$fifo" 2>"$tmp/daemon.log" &
pid=$!
read -r port <"$fifo" || true
[ -n "${port:-}" ] || { cat "$tmp/daemon.log" >&2; fail "the installed daemon did not start"; }
out=$(curl -sS --max-time 120 "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"tiny-qwen2","messages":[{"role":"user","content":"hi"}],"max_tokens":4}')
jq -e '.choices[0].message.role == "assistant" and (.usage.completion_tokens | type) == "number"' <<<"$out" >/dev/null ||
  { cat "$tmp/daemon.log" >&2; fail "no chat answer: $out"; }
# the worker that answered is the installed one
wpid=$(jq -R -r 'fromjson? | .message | capture("^worker tiny-qwen2 started \\(pid (?<p>[0-9]+)\\)").p' \
  "$tmp/daemon.log" | head -1)
[ -n "$wpid" ] || { cat "$tmp/daemon.log" >&2; fail "no 'worker started' line"; }
[ "$(readlink "/proc/$wpid/exe")" = "$root/usr/libexec/switchyard/switchyard-llama" ] ||
  fail "the worker is $(readlink "/proc/$wpid/exe"), not the installed one"
kill -TERM "$pid"
st=0
wait "$pid" || st=$?
pid=
[ "$st" -eq 0 ] || { cat "$tmp/daemon.log" >&2; fail "the daemon exited $st on SIGTERM"; }
[ -n "$(ls -A "$tmp/state")" ] || fail "nothing was remembered in SWITCHYARD_STATE_DIR"

echo "-- JSON log lines (the daemon's and the worker's)"
# every line one object with time, level, tag and message
jq -R -e -s 'split("\n") | map(select(length > 0) | fromjson) |
  length > 0 and all(.time and .level and .tag and (.message | type == "string") and (.pid | type == "number")) and
  any(.tag == "switchyard") and any(.tag | startswith("llama:"))' "$tmp/daemon.log" >/dev/null ||
  { cat "$tmp/daemon.log" >&2; fail "the log is not JSON lines from the daemon and its worker"; }
# --log-format on the command line, before any config: a bad config's error is a JSON line
if "$daemon" --log-format json --config "$tmp/none.yaml" 2>"$tmp/err.log"; then fail "a missing config was accepted"; fi
jq -e -s 'length == 1 and .[0].level == "error" and (.[0].message | contains("none.yaml"))' "$tmp/err.log" >/dev/null ||
  { cat "$tmp/err.log" >&2; fail "--log-format json: the error is not one JSON line"; }

echo "-- systemd-analyze"
# verify against this machine's systemd units (its targets, /bin/kill), the daemon's path pointed
# into DESTDIR (verify checks that ExecStart's program exists)
unit=$root/usr/lib/systemd/system/switchyard.service
mkdir -p "$tmp/unit"
sed "s|^ExecStart=/usr/bin/switchyard |ExecStart=$root/usr/bin/switchyard |" "$unit" >"$tmp/unit/switchyard.service"
systemd-analyze verify "$tmp/unit/switchyard.service" >"$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify"; }
[ -s "$tmp/verify.log" ] && { cat "$tmp/verify.log" >&2; fail "systemd-analyze verify warns"; }
systemd-analyze security --offline=true "$tmp/unit/switchyard.service" >"$tmp/security.log" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for switchyard.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
[ -n "$score" ] || { cat "$tmp/security.log" >&2; fail "no systemd-analyze security score"; }
echo "systemd-analyze security: $score (at most $SECURITY_MAX)"
awk -v s="$score" -v m="$SECURITY_MAX" 'BEGIN { exit !(s <= m) }' || { cat "$tmp/security.log" >&2; fail "exposure $score > $SECURITY_MAX"; }

# the sysusers file, as systemd-sysusers would apply it to an empty system (nothing written)
mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" --dry-run "$root/usr/lib/sysusers.d/switchyard.conf" >"$tmp/sysusers.log" 2>&1 &&
  grep -q "Creating user 'switchyard'" "$tmp/sysusers.log" || { cat "$tmp/sysusers.log" >&2; fail "systemd-sysusers"; }

echo "-- make uninstall"
mk uninstall
[ "$(cat "$root/etc/switchyard/switchyard.yaml" 2>/dev/null | tail -1)" = "# mine" ] || fail "uninstall removed a changed config"
rm "$root/etc/switchyard/switchyard.yaml"
left=$(find "$root" -not -type d)
[ -z "$left" ] || fail "uninstall left: $left"
echo "install test: ok"
