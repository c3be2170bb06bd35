#!/usr/bin/env bash
# DynamoDB calls per billing request, by function, from the SDK call log
# (shared::aws::call_log): a private stack (moto on 4612, server on 3612),
# one tenant, then one POST /v1/billing/usage, one GET /v1/billing/usage
# and 50 GET /v1/auth/me, each with what the billing worker's meter did
# meanwhile. Needs the debug local server built (make test or make run
# builds it). Figures: docs/performance.md ("Billing: calls per request").
#
#   bench/billing-calls.sh
set -euo pipefail
mkdir -p "${MEAS_DIR:-/tmp/billing-calls}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export LOCAL_DIR=${MEAS_DIR:-/tmp/billing-calls}/local MOTO_PORT=4612 CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/saas-platform/target}
env_file="$(infra/stack.sh up | tail -n 1)"
source "$env_file"
export AWS_CALL_LOG=${MEAS_DIR:-/tmp/billing-calls}/calls.jsonl LOCAL_ADDR=127.0.0.1:3612
rm -f "$AWS_CALL_LOG"
"$CARGO_TARGET_DIR/debug/local" > ${MEAS_DIR:-/tmp/billing-calls}/server.log 2>&1 &
echo $! > ${MEAS_DIR:-/tmp/billing-calls}/server.pid
for i in $(seq 1 60); do curl -sf http://127.0.0.1:3612/health >/dev/null && break; sleep 0.5; done
B=http://127.0.0.1:3612
P="correct horse battery staple"
tok=$(curl -s -X POST $B/v1/auth/register -H 'content-type: application/json' -d "{\"email\":\"o@m$RANDOM.example\",\"password\":\"$P\",\"password_confirm\":\"$P\",\"first_name\":\"O\",\"last_name\":\"O\",\"tenant_name\":\"Meas $RANDOM\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
H="authorization: Bearer $tok"
# warm: policy cache, standing
curl -s $B/v1/billing/usage -H "$H" >/dev/null
curl -s -X POST $B/v1/billing/usage -H "$H" -H 'content-type: application/json' -d '{"metric_type":"api_calls","quantity":1}' >/dev/null
sleep 3
count() { python3 - "$1" "$AWS_CALL_LOG" <<'PY'
import json,sys,collections
c=collections.Counter()
for line in open(sys.argv[2]):
    d=json.loads(line); c[(d["function"],d["service"]+":"+d["operation"])]+=1
print(sys.argv[1], dict(c))
PY
}
: > $AWS_CALL_LOG
curl -s -X POST $B/v1/billing/usage -H "$H" -H 'content-type: application/json' -d '{"metric_type":"api_calls","quantity":1000}' >/dev/null
count "POST usage (+2s of workers)"
: > $AWS_CALL_LOG
curl -s $B/v1/billing/usage -H "$H" | head -c 300; echo
count "GET usage"
: > $AWS_CALL_LOG
for i in $(seq 1 50); do curl -s $B/v1/auth/me -H "$H" >/dev/null; done
count "50x GET /v1/auth/me (request path)"
sleep 3
count "50x GET /v1/auth/me + 3 s of the meter"
curl -s $B/v1/billing/usage -H "$H" | python3 -c 'import json,sys; print("api_calls now", json.load(sys.stdin)["current_period"]["api_calls"])'
kill $(cat ${MEAS_DIR:-/tmp/billing-calls}/server.pid)
infra/stack.sh down >/dev/null 2>&1 || true
