#!/usr/bin/env bash
# The local AWS stack: moto (serialised, see infra/moto_server.py) with the
# resources of template.yaml.
#
#   infra/stack.sh up      venv, start moto (or reuse a live one), create resources, print env file path
#   infra/stack.sh down    stop the moto started by `up` and wait for it to exit
#   infra/stack.sh status  say whether it runs (exit 0) or not (exit 1)
#   infra/stack.sh env     print the env file path (source it: `. "$(infra/stack.sh env)"`)
#
# Environment: MOTO_PORT (4566), LOCAL_DIR (<repo>/.local), VENV_DIR (see venv.sh),
# LOCAL_QUEUE_VISIBILITY_SECONDS, LOCAL_MAX_RECEIVE_COUNT (see local_stack.py),
# STACK_START_TIMEOUT seconds to wait for moto to answer (30).
# Works from any directory: paths are resolved from this script's location.
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$INFRA_DIR")"
LOCAL_DIR="${LOCAL_DIR:-$REPO_DIR/.local}"
[[ "$LOCAL_DIR" == /* ]] || LOCAL_DIR="$PWD/$LOCAL_DIR"
MOTO_PORT="${MOTO_PORT:-4566}"
MOTO_HOST=127.0.0.1
ENDPOINT="http://$MOTO_HOST:$MOTO_PORT"
PID_FILE="$LOCAL_DIR/moto.pid"
LOG_FILE="$LOCAL_DIR/moto.log"
ENV_FILE="$LOCAL_DIR/env"
START_TIMEOUT="${STACK_START_TIMEOUT:-30}"

say() { echo "stack.sh: $*" >&2; }

# True while the process runs. A zombie counts as gone: once `up` has exited,
# moto's parent is init, which may take a moment to reap it.
alive() {
  local state=""
  kill -0 "$1" 2>/dev/null || return 1
  if [[ -r "/proc/$1/stat" ]]; then
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
  fi
  [[ "$state" != "Z" ]]
}

# The pid from PID_FILE when that process is alive and is our moto_server.py
# (a stale file may name a pid the system has since reused), else nothing.
live_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "moto_server.py" || return 1
  fi
  echo "$pid"
}

# True when something on the port answers like moto (its /moto-api/ is moto's own).
answers() {
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$ENDPOINT/moto-api/" 2>/dev/null || true)"
  [[ "$code" == "200" ]]
}

wait_until_answers() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! alive "$pid"; then
      say "moto exited during start-up; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "moto did not answer on $ENDPOINT within ${START_TIMEOUT}s (see $LOG_FILE)"
      return 1
    fi
    sleep 0.1
  done
}

cmd_up() {
  local venv pid
  mkdir -p "$LOCAL_DIR"
  venv="$("$INFRA_DIR/venv.sh")"

  if pid="$(live_pid)" && answers; then
    say "reusing moto (pid $pid) on $ENDPOINT"
  elif answers; then
    say "reusing the moto server already answering on $ENDPOINT (not started by this script)"
  else
    if pid="$(live_pid)"; then
      say "pid $pid from $PID_FILE is alive but does not answer on $ENDPOINT; stop it first (infra/stack.sh down)"
      exit 1
    fi
    rm -f "$PID_FILE"
    say "starting moto on $ENDPOINT (log: $LOG_FILE)"
    # setsid: the server outlives this shell and ignores the caller's Ctrl-C.
    setsid "$venv/bin/python" "$INFRA_DIR/moto_server.py" --host "$MOTO_HOST" --port "$MOTO_PORT" \
      >"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    if ! wait_until_answers "$pid"; then
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      exit 1
    fi
    say "moto up (pid $pid)"
  fi

  AWS_ENDPOINT_URL="$ENDPOINT" LOCAL_DIR="$LOCAL_DIR" TEMPLATE="$REPO_DIR/template.yaml" \
    "$venv/bin/python" "$INFRA_DIR/local_stack.py" >/dev/null
  echo "$ENV_FILE"
}

cmd_down() {
  local pid deadline
  if ! pid="$(live_pid)"; then
    rm -f "$PID_FILE"
    say "not running (no live pid in $PID_FILE)"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  local killed=0
  while alive "$pid"; do
    if ((SECONDS >= deadline && killed == 0)); then
      say "pid $pid ignored SIGTERM for 10s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      killed=1
    fi
    sleep 0.1
  done
  rm -f "$PID_FILE"
  say "stopped moto (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(live_pid)" && answers; then
    echo "running: pid $pid, $ENDPOINT, env $ENV_FILE"
  elif answers; then
    echo "running: $ENDPOINT answers (not started by this script), env $ENV_FILE"
  else
    echo "stopped"
    return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) echo "$ENV_FILE" ;;
  *)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
