#!/usr/bin/env bash
# Runs the platform locally: the local AWS stack (moto, with the resources of
# template.yaml) and the local server with every route group on one port and
# the SQS pollers feeding the workers. Prints the seeded platform admin.
#
#   scripts/run-local.sh            # API on 127.0.0.1:3000
#   LOCAL_ADDR=127.0.0.1:8080 scripts/run-local.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export LOCAL_DIR="${LOCAL_DIR:-$repo/.local}"
export MOTO_PORT="${MOTO_PORT:-4566}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/saas-platform/target}"
# The SAML crate's native build dependencies (libclang for bindgen, the
# xmlsec1 CLI the tests sign with), fetched without root (infra/deps.sh).
eval "$(infra/deps.sh)"

env_file="$(infra/stack.sh up | tail -n 1)"
# shellcheck disable=SC1090
source "$env_file"
cargo build -p local --locked
echo "local stack: $AWS_ENDPOINT_URL (stop it with: infra/stack.sh down)"
exec "$CARGO_TARGET_DIR/debug/local" "$@"
