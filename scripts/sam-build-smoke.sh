#!/usr/bin/env bash
# CI smoke of `sam build`: builds ONE function of template.yaml the way a
# deploy does (SAM CLI's rust-cargolambda builder -> cargo-lambda -> zig), then
# checks that the artifact exists, is a Linux executable for the architecture,
# and that its zip stays under the Lambda package budget.
#
#   scripts/sam-build-smoke.sh                  # AuditFunction, x86_64
#   SMOKE_FUNCTION=DocsFunction scripts/sam-build-smoke.sh
#
# Variables:
#   SMOKE_FUNCTION      logical id to build (default AuditFunction: an HTTP
#                       route group with the smallest dependency set)
#   SMOKE_ARCH          the template's Architecture parameter (default x86_64:
#                       this machine kind has no aarch64 Rust target)
#   SMOKE_TARGET_DIR    cargo target dir, its own so that it never invalidates
#                       the test build's (default $HOME/.cache/saas-platform/target-sam)
#   MAX_ZIP_BYTES       the zipped bootstrap's limit (default 6,000,000)
#
# Installs what it needs through the project's scripts: the SAM CLI and
# cargo-lambda + zig into the venv (infra/venv.sh --sam --lambda; no pip work
# when the pins are present).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

fn="${SMOKE_FUNCTION:-AuditFunction}"
arch="${SMOKE_ARCH:-x86_64}"
export CARGO_TARGET_DIR="${SMOKE_TARGET_DIR:-$HOME/.cache/saas-platform/target-sam}"
export CARGO_INCREMENTAL=0
MAX_ZIP_BYTES="${MAX_ZIP_BYTES:-6000000}"
export SAM_CLI_TELEMETRY=0

venv="$(infra/venv.sh --sam --lambda | tail -n 1)"
export PATH="$venv/bin:$PATH"

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/sam-build-smoke.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT

start=$(date +%s)
# SAM CLI 1.170's rust-cargolambda builder is no longer gated as a beta
# feature (samcli/commands/build/build_context.py lists only python-uv), so no
# --beta-features; stdin is closed so that a confirmation prompt would fail
# instead of waiting.
sam build "$fn" --template-file template.yaml --build-dir "$build_dir" \
  --parameter-overrides "Architecture=$arch" --region us-east-1 </dev/null
elapsed=$(( $(date +%s) - start ))

artifact="$build_dir/$fn/bootstrap"
"$venv/bin/python" - "$artifact" "$arch" "$MAX_ZIP_BYTES" "$elapsed" "$fn" <<'PY'
import io, os, sys, zipfile
path, arch, limit, elapsed, fn = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
if not os.path.isfile(path):
    sys.exit(f"sam-build-smoke: {path} is missing")
data = open(path, "rb").read()
machine = int.from_bytes(data[18:20], "little")
want = {"x86_64": 0x3E, "arm64": 0xB7}[arch]
if data[:4] != b"\x7fELF" or machine != want:
    sys.exit(f"sam-build-smoke: {path} is not a Linux {arch} executable")
if not os.access(path, os.X_OK):
    sys.exit(f"sam-build-smoke: {path} is not executable")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.writestr("bootstrap", data)
zipped = len(buf.getvalue())
print(f"sam-build-smoke: {fn} bootstrap {len(data):,} bytes, zipped {zipped:,} bytes, sam build {elapsed}s")
if zipped > limit:
    sys.exit(f"sam-build-smoke: zipped bootstrap over {limit:,} bytes")
PY
