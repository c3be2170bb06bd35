#!/usr/bin/env bash
# Creates (once) the Python virtualenv that holds the local AWS emulator (moto),
# boto3 for the resource bootstrap, and optionally the SAM CLI (+ cfn-lint).
#
#   infra/venv.sh          # moto[server], boto3, pyyaml, cryptography, pyotp, standardwebhooks, svix
#   infra/venv.sh --sam    # the above + aws-sam-cli (brings cfn-lint)
#   infra/venv.sh --lambda # the base + cargo-lambda and zig (make package, sam build)
#   (--sam and --lambda combine)
#
# Idempotent: when every pinned distribution is already installed at its pinned
# version the script does no pip work at all (a re-run takes well under a second).
# The venv lives outside the clone so CI runs on the same machine reuse it.
# Prints the venv path on stdout (everything else goes to stderr).
set -euo pipefail

VENV_DIR="${VENV_DIR:-$HOME/.cache/saas-platform/venv}"
PYTHON="${PYTHON:-python3}"

# Pins. boto3 is pinned to the version aws-sam-cli pins exactly, so adding
# --sam later never churns the base install; cryptography stays below 49
# because pyOpenSSL (pulled in by SAM) requires it.
BASE_PINS=(
  "moto[server]==5.2.5"
  "boto3==1.43.108"
  "pyyaml==6.0.3"
  "cryptography==46.0.3"
  # A second TOTP implementation: the MFA tests check our codes against it.
  "pyotp==2.12.1"
  # Independent webhook signers: the integrations tests sign inbound
  # webhooks with the Standard Webhooks and Svix libraries, not our code.
  "standardwebhooks==1.1.0"
  "svix==2.9.1"
)
SAM_PINS=(
  "aws-sam-cli==1.170.0"
)
# cargo-lambda builds the Lambda zips (scripts/package.sh, SAM's
# rust-cargolambda builder); it links through zig (cargo-zigbuild inside) so
# the binaries need no newer glibc than Lambda's. The wheel requires only
# ziglang>=0.10, so zig is pinned here too (docs/infra.md, "Packaging").
LAMBDA_PINS=(
  "cargo-lambda==1.9.2"
  "ziglang==0.17.1"
)

want_sam=0
want_lambda=0
for arg in "$@"; do
  case "$arg" in
    --sam) want_sam=1 ;;
    --lambda) want_lambda=1 ;;
    -h|--help) sed -n '2,14p' "$0" >&2; exit 0 ;;
    *) echo "venv.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

pins=("${BASE_PINS[@]}")
if [[ $want_sam -eq 1 ]]; then
  pins+=("${SAM_PINS[@]}")
fi
if [[ $want_lambda -eq 1 ]]; then
  pins+=("${LAMBDA_PINS[@]}")
fi

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
  echo "venv.sh: creating virtualenv at $VENV_DIR" >&2
  mkdir -p "$(dirname "$VENV_DIR")"
  "$PYTHON" -m venv "$VENV_DIR"
fi

# True when every pin is installed at exactly its version (extras are ignored:
# moto[server]'s extra deps are checked through flask/werkzeug's presence).
pins_satisfied() {
  "$VENV_DIR/bin/python" - "$@" <<'PY'
import re, sys
from importlib import metadata
extra_markers = {"moto[server]": ["flask", "werkzeug", "flask-cors", "pyyaml"]}
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    base = re.sub(r"\[.*\]", "", name)
    try:
        if metadata.version(base) != version:
            sys.exit(1)
        for dep in extra_markers.get(name, []):
            metadata.version(dep)
    except metadata.PackageNotFoundError:
        sys.exit(1)
sys.exit(0)
PY
}

if pins_satisfied "${pins[@]}"; then
  echo "venv.sh: pinned packages already present" >&2
else
  echo "venv.sh: installing ${pins[*]}" >&2
  "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2
  pins_satisfied "${pins[@]}" || { echo "venv.sh: install did not yield the pinned versions" >&2; exit 1; }
fi

echo "$VENV_DIR"
