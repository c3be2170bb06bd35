#!/usr/bin/env bash
# The API checked from the outside, against the real local server on a local
# stack that is already up (scripts/test.sh calls this with its stack's env
# loaded; LOCAL_SERVER_BIN is the built `local` binary):
#
#   1. the served /v1/openapi.json validates as OpenAPI 3.1, and /docs
#      renders it in headless Chromium (tests/api/reference-page.sh);
#   2. newman walks seed 000's and seed 004's scenarios (docs/postman/);
#   3. the SDK examples of docs/examples/ run (Python, Node.js, curl);
#   4. schemathesis fuzzes every operation from it, as the tenant owner and
#      as an API key: 0 server errors, 0 responses off their schema, 0
#      undocumented status codes or content types (tests/api/schemathesis.sh).
#
#   API_CHECKS=spec,reference,postman,examples,fuzz   # a subset (default: all)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
: "${LOCAL_SERVER_BIN:?run through scripts/test.sh (make test)}"
checks="${API_CHECKS:-spec,reference,postman,examples,fuzz}"
wants() { [[ ",$checks," == *",$1,"* ]]; }

mapfile -t tool_dirs < <(scripts/api-tools.sh)
export PATH="${tool_dirs[0]}:${tool_dirs[1]}:$PATH"

port="${API_CHECK_PORT:-3567}"
export BASE_URL="http://127.0.0.1:$port"
export PLATFORM_ADMIN_EMAIL="admin@platform.local"
export PLATFORM_ADMIN_PASSWORD="api-checks-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
out="$LOCAL_DIR/api-checks"
mkdir -p "$out"
LOCAL_ADDR="127.0.0.1:$port" RUST_LOG=warn "$LOCAL_SERVER_BIN" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fsS "$BASE_URL/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE_URL/health" >/dev/null

status=0
summary=()
step() { echo "== api checks: $*"; }

if wants spec; then
  step "the served document validates as OpenAPI 3.1"
  curl -fsS "$BASE_URL/v1/openapi.json" -o "$out/openapi.json"
  spec_status=0
  openapi-spec-validator "$out/openapi.json" || spec_status=1
  # The docs function serves the committed document minified (and gzipped
  # to callers that ask): the same JSON, not the same bytes.
  python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
    "$out/openapi.json" docs/openapi.json || { echo "the served document is not docs/openapi.json"; spec_status=1; }
  scripts/postman.sh --check || spec_status=1
  [[ $spec_status -eq 0 ]] || status=1
  operations="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(v) for v in d["paths"].values()), "operations,", len(d.get("webhooks", {})), "webhooks")' docs/openapi.json)"
  summary+=("OpenAPI 3.1 document ($operations) $([[ $spec_status -eq 0 ]] && echo "valid and served as committed" || echo FAILED)")
fi

if wants reference; then
  step "/docs renders in headless Chromium"
  reference_status=0
  reference="$(tests/api/reference-page.sh "$out" 2>&1)" || reference_status=1
  echo "$reference"
  [[ $reference_status -eq 0 ]] || status=1
  summary+=("$(echo "$reference" | tail -n 1)")
fi

# The identities every later step runs as; without them nothing can run.
identities="$(python3 tests/api/bootstrap.py "$BASE_URL" "$PLATFORM_ADMIN_EMAIL" "$PLATFORM_ADMIN_PASSWORD")" || exit 1
eval "$identities"

if wants postman; then
  step "newman: the seed scenarios (docs/postman/seed-scenarios.postman_collection.json)"
  newman_status=0
  newman run docs/postman/seed-scenarios.postman_collection.json \
    --env-var "baseUrl=$BASE_URL" --env-var "adminEmail=$PLATFORM_ADMIN_EMAIL" \
    --env-var "adminPassword=$PLATFORM_ADMIN_PASSWORD" \
    --reporters cli,json --reporter-json-export "$out/newman.json" \
    --reporter-cli-no-banner --color off || newman_status=1
  [[ $newman_status -eq 0 ]] || status=1
  assertions="$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["run"]["stats"]["assertions"]; print("%d assertions, %d failed" % (s["total"], s["failed"]))' "$out/newman.json" 2>/dev/null || echo "no report")"
  summary+=("newman seed scenarios ($assertions)")
fi
if wants examples; then
  step "docs/examples"
  examples_status=0
  docs/examples/run-all.sh || examples_status=1
  [[ $examples_status -eq 0 ]] || status=1
  summary+=("examples $([[ $examples_status -eq 0 ]] && echo passed || echo FAILED)")
fi
# Last: its failed sign-ins would otherwise throttle the others' (by address).
if wants fuzz; then
  step "schemathesis"
  started=$SECONDS
  fuzz_status=0
  tests/api/schemathesis.sh "$out" 2>&1 | tee "$out/schemathesis.log" || fuzz_status=1
  [[ $fuzz_status -eq 0 ]] || status=1
  # One figure per run (owner, API key): operations tested and cases generated.
  runs="$(awk '/^-- schemathesis as/ {who=$4} /Tested:/ {ops=$2} / generated, / {printf "%s%s: %s operations, %s cases", sep, who, ops, $1; sep="; "}' "$out/schemathesis.log")"
  summary+=("schemathesis ($runs; $((SECONDS - started)) s) $([[ $fuzz_status -eq 0 ]] && echo "0 failures" || echo FAILED)")
fi
for line in "${summary[@]}"; do echo "api checks: $line"; done
exit $status
