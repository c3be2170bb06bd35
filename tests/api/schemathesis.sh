#!/usr/bin/env bash
# schemathesis against the local server, from the committed document: every
# operation, schema-valid and schema-violating data, stateful links (create
# then read, update, delete), as the tenant owner (bearer token) and as an
# API key holding every scope. Needs BASE_URL, OWNER_TOKEN, API_KEY (from
# tests/api/bootstrap.py); writes JUnit reports to $1.
#
# Checks: no 5xx; every status, content type and required header documented;
# every body matches its schema; data the schema refuses is refused (4xx).
# Each run ends by deleting the webhook endpoints it made (tests/api/cleanup.py).
set -euo pipefail
out="${1:-.}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
examples="${FUZZ_MAX_EXAMPLES:-25}"
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection"

run() {
  local who="$1"; shift
  echo "-- schemathesis as $who"
  schemathesis run "${OPENAPI_DOCUMENT:-$repo/docs/openapi.json}" --url "$BASE_URL" \
    --checks "$checks" --phases examples,coverage,fuzzing,stateful \
    --max-examples "$examples" --seed 12 --workers 1 --request-timeout 30 \
    --suppress-health-check all --warnings off \
    --exclude-path-regex '^/docs' \
    --report junit --report-junit-path "$out/schemathesis-$who.xml" \
    "$@"
}

status=0
# The owner's token: every operation a person can call (public ones too).
run owner -H "Authorization: Bearer $OWNER_TOKEN" || status=1
# The run's teardown: its webhook endpoints point at hosts that never answer,
# and the dispatcher's retries for them would load the next run.
python3 "$repo/tests/api/cleanup.py" "$BASE_URL" "$API_KEY" || echo "cleanup failed: the next run may be slower"
# The API key: the operations a key may call (people-only ones are skipped,
# and public ones, which the owner run covered).
run api-key -H "X-API-Key: $API_KEY" --exclude-by '/x-api-key-scope == null' \
  --exclude-tag auth --exclude-tag platform --exclude-tag docs || status=1
python3 "$repo/tests/api/cleanup.py" "$BASE_URL" "$API_KEY" || echo "cleanup failed"
exit $status
