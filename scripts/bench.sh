#!/usr/bin/env bash
# The performance bench (docs/performance.md): builds the measured functions'
# release binaries, the local server (its `seed-admin` makes the platform admin)
# and the bench; starts a private local stack (its own port and state dir, so
# `make run` and `make test` are untouched, fresh for each function); runs every
# function's real binary under the bench's Lambda Runtime API against it; stops
# the stack again.
#
#   scripts/bench.sh                                 # 20 cold starts, 200 warm invocations per request type
#   scripts/bench.sh --spawns 5 --invocations 50     # extra args go to the bench (see --help)
#   scripts/bench.sh > bench.md                      # tables on stdout, progress on stderr
#
# Environment: BENCH_MOTO_PORT (4568), BENCH_LOCAL_DIR (<repo>/.local/bench),
# CARGO_TARGET_DIR (~/.cache/saas-platform/target). Works from any directory.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export LOCAL_DIR="${BENCH_LOCAL_DIR:-$repo/.local/bench}"
export MOTO_PORT="${BENCH_MOTO_PORT:-4568}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/saas-platform/target}"
# The local server links the SAML crate (libxmlsec1 via bindgen: infra/deps.sh).
eval "$(infra/deps.sh)"

# Release = what is deployed (LTO, one codegen unit: slow the first time, a
# no-op when up to date), with the hello-world floor (bench/floor) in the same
# profile so the two compare like for like. The local server only sets up, so
# it stays in the debug profile the tests already build. The bench is release
# too: replayed AWS answers come from it, and its own time per answer would
# otherwise count as the function's. Separate commands, so that each build's
# features stay those of that package alone (no unification across them).
cargo build --release --locked -p auth -p saml -p tenants -p api-keys -p customers -p tryons -p webhooks -p integrations \
  -p tenant-provisioner -p tryon-worker -p webhook-dispatcher -p billing -p billing-worker -p integrations-worker -p workflows -p workflows-worker \
  -p admin -p compliance -p compliance-worker -p ai -p ai-worker -p users -p projects -p credits -p audit -p docs \
  -p floor
cargo build --locked -p local
cargo build --release --locked -p bench

# The bench replaces this stack by a fresh one before each function
# (--restart-stack): moto's TransactWriteItems slows down, and its memory grows,
# with every transaction on a fuller table (docs/performance.md), so each
# function starts from an empty table. The trap stops whichever runs last.
infra/stack.sh down >/dev/null 2>&1 || true
trap 'infra/stack.sh down >/dev/null 2>&1 || true' EXIT
env_file="$(infra/stack.sh up | tail -n 1)"

"$CARGO_TARGET_DIR/release/bench" \
  --env-file "$env_file" \
  --restart-stack \
  --release-dir "$CARGO_TARGET_DIR/release" \
  --local-bin "$CARGO_TARGET_DIR/debug/local" \
  --log-dir "$LOCAL_DIR/logs" \
  "$@"
