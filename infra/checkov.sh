#!/usr/bin/env bash
# Runs checkov (IaC static analysis) on template.yaml, installing it once into
# its own virtualenv: checkov pins boto3/botocore and many other packages at
# versions that would fight the SAM CLI's and moto's pins in infra/venv.sh.
#
#   infra/checkov.sh            # install if needed, then scan template.yaml
#   infra/checkov.sh --install  # install only; prints the venv path
#
# Findings answered rather than fixed are skipped in .checkov.yaml, each with
# its reason in docs/infra.md ("checkov findings"); any other failed check
# makes the script exit non-zero, so infra/validate.sh (make validate, CI)
# fails on a new unanswered finding.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKOV_VENV="${CHECKOV_VENV:-$HOME/.cache/saas-platform/checkov-venv}"
PYTHON="${PYTHON:-python3}"
CHECKOV_VERSION="3.3.30"

install_only=0
for arg in "$@"; do
  case "$arg" in
    --install) install_only=1 ;;
    -h|--help) sed -n '2,13p' "$0" >&2; exit 0 ;;
    *) echo "checkov.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

installed() {
  "$CHECKOV_VENV/bin/python" - "$CHECKOV_VERSION" <<'PY' 2>/dev/null
import sys
from importlib import metadata
sys.exit(0 if metadata.version("checkov") == sys.argv[1] else 1)
PY
}

if [[ ! -x "$CHECKOV_VENV/bin/python" ]]; then
  echo "checkov.sh: creating virtualenv at $CHECKOV_VENV" >&2
  mkdir -p "$(dirname "$CHECKOV_VENV")"
  "$PYTHON" -m venv "$CHECKOV_VENV"
fi
if ! installed; then
  echo "checkov.sh: installing checkov==$CHECKOV_VERSION" >&2
  "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  installed || { echo "checkov.sh: install did not yield checkov $CHECKOV_VERSION" >&2; exit 1; }
fi
if [[ $install_only -eq 1 ]]; then
  echo "$CHECKOV_VENV"
  exit 0
fi

cd "$repo"
# --quiet: failed checks only; no telemetry, no platform upload, no
# downloads of external policies (the machines reach package registries only).
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$CHECKOV_VENV/bin/checkov" --config-file "$repo/.checkov.yaml" \
  --file "$repo/template.yaml" --framework cloudformation \
  --quiet --compact --skip-download
