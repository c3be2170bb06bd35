#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the local AWS emulator if
# needed, starts a private stack (its own port and state dir, so a running
# `make run` is untouched), runs every test against it, and stops it again.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -- tenants      # extra args go to `cargo test`
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export LOCAL_DIR="${TEST_LOCAL_DIR:-$repo/.local/test}"
export MOTO_PORT="${TEST_MOTO_PORT:-4567}"
# Poison messages reach the DLQ after 2 receives instead of the template's 5,
# so the DLQ test takes seconds (docs/infra.md).
export LOCAL_MAX_RECEIVE_COUNT="${LOCAL_MAX_RECEIVE_COUNT:-2}"
# Tenant schedules' rates run 30x fast: a `rate(1 minute)` sync or workflow
# fires every 2 s (functions/local/src/schedules.rs).
export LOCAL_TENANT_SCHEDULE_SPEEDUP="${LOCAL_TENANT_SCHEDULE_SPEEDUP:-30}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/saas-platform/target}"
# Four tests at a time on two cores: most of a test's time is spent waiting
# on the asynchronous paths (outbox, bus, queues, workers), and the local
# emulator, one call at a time, is the shared limit (about 90% of a core at
# four). The `it` suite took 558 s at four, where it took 1,600-2,300 s at
# the default two (docs/infra.md, "moto with serialised requests").
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
# The SAML crate's native build dependencies (libclang for bindgen, the
# xmlsec1 CLI the tests sign with), fetched without root (infra/deps.sh).
eval "$(infra/deps.sh)"
# The SSO tests' OpenID provider (npm oidc-provider, pinned by
# tests/idp/package-lock.json), installed once outside the clone.
SSO_IDP_MODULES="$(tests/idp/install.sh)"
export SSO_IDP_MODULES

# A fresh state every run: tests must not depend on leftovers.
infra/stack.sh down >/dev/null 2>&1 || true
trap 'infra/stack.sh down >/dev/null 2>&1 || true' EXIT
env_file="$(infra/stack.sh up | tail -n 1)"
# shellcheck disable=SC1090
source "$env_file"
# The env file says what Lambda logs (info); tests log warnings only.
export RUST_LOG="${TEST_RUST_LOG:-warn}"

if [[ "${1:-}" == "--" ]]; then shift; fi
log="$LOCAL_DIR/cargo-test.log"
set +e
# Tests that need a second server process (limits across Lambda instances,
# what a server logs) start the real `local` binary.
cargo build --workspace --bins --locked 2>&1 | tee "$log.build"
build_status=${PIPESTATUS[0]}
if [[ $build_status -ne 0 ]]; then exit "$build_status"; fi
export LOCAL_SERVER_BIN="${LOCAL_SERVER_BIN:-$CARGO_TARGET_DIR/debug/local}"
# Every AWS call a function makes during the suite (shared::aws::call_log),
# for the registry check's IAM part below.
export AWS_CALL_LOG="$LOCAL_DIR/aws-calls.jsonl"
rm -f "$AWS_CALL_LOG"
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The registry check (docs/adding-a-route-group.md): template.yaml, README,
# events/, the local server and the routers agree, and every function's IAM
# policy grants the calls the suite saw it make. After the suite, because it
# reads the suite's call log; its result lines join the summary.
REGISTRY_CALL_LOG="$AWS_CALL_LOG" AWS_CALL_LOG="" \
  cargo test -p platform-tests --test registry --locked -- --nocapture 2>&1 | tee -a "$log"
registry_status=${PIPESTATUS[0]}
if [[ $status -eq 0 ]]; then status=$registry_status; fi
# The API from the outside (scripts/api-checks.sh): the served OpenAPI
# document validated, schemathesis over every operation, newman over the seed
# scenarios, the SDK examples. API_CHECKS=none skips them (a quick local run).
api_checks="${API_CHECKS:-all}"
if [[ "$api_checks" != "none" ]]; then
  api_log="$LOCAL_DIR/api-checks.log"
  API_CHECKS="${api_checks/#all/spec,reference,postman,examples,fuzz}" scripts/api-checks.sh 2>&1 | tee "$api_log"
  api_status=${PIPESTATUS[0]}
  if [[ $status -eq 0 ]]; then status=$api_status; fi
fi
set -e
# One closing line for the whole run: cargo prints one per test binary.
grep -hE "^api checks:" "$LOCAL_DIR/api-checks.log" 2>/dev/null || true
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i-1); if ($i ~ /^failed;/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
