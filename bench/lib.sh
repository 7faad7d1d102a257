# bench/lib.sh — shell helpers the bench scripts share (sourced, not run).

# wait_healthy URL PID: bounded wait (60 s) for a server to answer URL/health with 200; fails at
# once when the process PID has exited.
wait_healthy() {
  for _ in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}
