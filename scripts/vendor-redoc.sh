#!/usr/bin/env bash
# Vendors Redoc's standalone bundle into docs/reference/ (the /docs page
# loads nothing from a CDN). Run it to upgrade: change the version and the
# checksum of the npm tarball together, then commit the bundle.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="3.0.1"
tarball_sha256="d9666cd5a1cb6c08c6d23f2433b025774a11354823d70357c8f506b988dac189"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "redoc@$version" --silent >/dev/null)
echo "$tarball_sha256  $work/redoc-$version.tgz" | sha256sum --check --quiet
tar xzf "$work/redoc-$version.tgz" -C "$work" package/bundles/redoc.standalone.js package/LICENSE
cp "$work/package/bundles/redoc.standalone.js" "$repo/docs/reference/redoc.standalone.js"
cp "$work/package/LICENSE" "$repo/docs/reference/REDOC-LICENSE"
echo "vendored redoc $version into docs/reference/"
