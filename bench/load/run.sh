#!/usr/bin/env bash
# Seed 000's load scenarios (bench/load/locustfile.py) with Locust, installed
# by this script into a venv of its own. Against `make run` by default (its
# URL, and the platform admin it seeded from .local/platform-admin-password);
# against a deployed stage with --host and the admin's credentials in
# ADMIN_EMAIL / ADMIN_PASSWORD.
#
#   bench/load/run.sh                                  # both scenarios, 20 users, 60 s each, on make run
#   bench/load/run.sh --scenario api --users 50 --duration 2m
#   ADMIN_EMAIL=... ADMIN_PASSWORD=... bench/load/run.sh --host https://api.example.com \
#       --users 500 --duration 10m --spawn-rate 4       # the seed's scale, on a stage
#
# Prints Locust's summary per scenario and the seed's verdict (p95 < 500 ms,
# error rate < 0.1 %); exits 1 when a scenario misses them. CSVs go to
# $LOAD_OUT (.local/load).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

host="http://127.0.0.1:3000" users=20 duration=60s spawn_rate=5 scenario=both
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --spawn-rate) spawn_rate="$2"; shift 2 ;;
    --scenario) scenario="$2"; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

venv="${LOAD_VENV:-$HOME/.cache/saas-platform/venv-load}"
if [ ! -x "$venv/bin/locust" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "locust==2.47.0"
fi

export ADMIN_EMAIL="${ADMIN_EMAIL:-admin@platform.local}"
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  ADMIN_PASSWORD="$(cat "$repo/.local/platform-admin-password" 2>/dev/null)" || {
    echo "no ADMIN_PASSWORD and no .local/platform-admin-password: start \`make run\` first, or set both" >&2
    exit 2
  }
  export ADMIN_PASSWORD
fi

out="${LOAD_OUT:-$repo/.local/load}"
mkdir -p "$out"
case "$scenario" in
  auth) classes=(EnterpriseAuthenticationLoad) ;;
  api) classes=(MultiTenantApiLoad) ;;
  both) classes=(EnterpriseAuthenticationLoad MultiTenantApiLoad) ;;
  *) echo "--scenario is auth, api or both" >&2; exit 2 ;;
esac

status=0
for class in "${classes[@]}"; do
  echo "== $class: $users users, $duration, spawn rate $spawn_rate/s, host $host"
  "$venv/bin/locust" -f "$repo/bench/load/locustfile.py" --headless --host "$host" \
    --users "$users" --spawn-rate "$spawn_rate" --run-time "$duration" --stop-timeout 10 \
    --csv "$out/$class" --only-summary "$class" || status=1
done
exit "$status"
