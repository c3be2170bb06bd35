#!/usr/bin/env bash
# Installs (once) the tools that check the API from the outside, pinned:
# schemathesis and openapi-spec-validator in their own virtualenv (apart from
# moto's, so neither churns the other), newman and openapi-to-postmanv2 from
# npm under one prefix. Idempotent: a second run does no network work.
# Prints two lines on stdout: the venv's bin dir, then npm's .bin dir.
set -euo pipefail

cache="${SAAS_CACHE_DIR:-$HOME/.cache/saas-platform}"
venv="$cache/api-venv"
node_prefix="$cache/node"
PY_PINS=("schemathesis==4.32.5" "openapi-spec-validator==0.9.0" "jsonschema==4.26.0")
NPM_PINS=("newman@6.2.2" "openapi-to-postmanv2@6.3.3")

stamp="$venv/.pins"
if [[ "$(cat "$stamp" 2>/dev/null)" != "${PY_PINS[*]}" ]]; then
  echo "api-tools.sh: installing ${PY_PINS[*]}" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}" >&2
  echo "${PY_PINS[*]}" > "$stamp"
fi

node_stamp="$node_prefix/.pins"
if [[ "$(cat "$node_stamp" 2>/dev/null)" != "${NPM_PINS[*]}" ]]; then
  echo "api-tools.sh: installing ${NPM_PINS[*]}" >&2
  mkdir -p "$node_prefix"
  npm install --silent --no-audit --no-fund --prefix "$node_prefix" "${NPM_PINS[@]}" >&2
  echo "${NPM_PINS[*]}" > "$node_stamp"
fi

echo "$venv/bin"
echo "$node_prefix/node_modules/.bin"
