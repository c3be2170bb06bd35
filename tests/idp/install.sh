#!/usr/bin/env bash
# Installs the SSO tests' OpenID provider (npm `oidc-provider`, pinned by
# package-lock.json) outside the clone, so CI runs on one machine share it.
# Idempotent: when the installed lock matches this one, nothing is done.
# Prints the node_modules directory on stdout (everything else on stderr).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${SSO_IDP_DIR:-${SAAS_CACHE_DIR:-$HOME/.cache/saas-platform}/idp}"
mkdir -p "$dir"
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [[ ! -d "$dir/node_modules/oidc-provider" ]]; then
  command -v npm >/dev/null || { echo "idp/install.sh: npm is needed (Node 20.19+)" >&2; exit 1; }
  echo "idp/install.sh: installing oidc-provider into $dir" >&2
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >&2)
fi
echo "$dir/node_modules"
