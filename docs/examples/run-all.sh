#!/usr/bin/env bash
# Runs the examples in every language against a running server: Python
# (standard library), Node.js (20+, built-ins only) and curl (bash + curl +
# openssl + python3). Each signs in, creates an API key, upserts a customer,
# uploads and confirms photos, runs a try-on to the end and verifies a real
# webhook delivery's signature, then cleans up.
#
#   BASE_URL=http://127.0.0.1:3000 OWNER_EMAIL=... OWNER_PASSWORD=... docs/examples/run-all.sh
#
# The owner's tenant needs credits; tests/api/bootstrap.py makes such a
# tenant and prints the variables (see docs/examples/README.md). Called by
# scripts/api-checks.sh with them exported. EXAMPLES=python,node,curl picks
# a subset. Runs every language even if one fails; exits non-zero if any did.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BASE_URL:?set BASE_URL (e.g. http://127.0.0.1:3000)}"
: "${OWNER_EMAIL:?set OWNER_EMAIL}" "${OWNER_PASSWORD:?set OWNER_PASSWORD}"
export BASE_URL OWNER_EMAIL OWNER_PASSWORD

wanted="${EXAMPLES:-python,node,curl}"
failed=()
for language in python node curl; do
  [[ ",$wanted," == *",$language,"* ]] || continue
  case "$language" in
    python) command=(python3 "$here/python/quickstart.py") ;;
    node) command=(node "$here/node/quickstart.mjs") ;;
    curl) command=(bash "$here/curl/quickstart.sh") ;;
  esac
  echo "== examples: $language"
  started=$SECONDS
  if "${command[@]}"; then
    echo "== examples: $language ok ($((SECONDS - started)) s)"
  else
    echo "== examples: $language FAILED ($((SECONDS - started)) s)"
    failed+=("$language")
  fi
done
if ((${#failed[@]})); then
  echo "examples failed: ${failed[*]}" >&2
  exit 1
fi
