#!/usr/bin/env bash
# Validates template.yaml with the SAM CLI and cfn-lint (both offline),
# installing the SAM CLI into the project's venv on first use.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$repo/infra/venv.sh" --sam | tail -n 1)"
export SAM_CLI_TELEMETRY=0
"$venv/bin/sam" validate --lint --region us-east-1 --template-file "$repo/template.yaml"
