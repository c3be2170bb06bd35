#!/usr/bin/env bash
# Validates template.yaml: the alarms/dashboard block is up to date with the
# functions and queues (infra/alarms.py --check), the SAM CLI and cfn-lint
# accept it (both offline), and checkov finds nothing unanswered
# (infra/checkov.sh, .checkov.yaml). Installs the SAM CLI into the project's
# venv and checkov into its own on first use.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$repo/infra/venv.sh" --sam | tail -n 1)"
export SAM_CLI_TELEMETRY=0
"$venv/bin/python" "$repo/infra/alarms.py" --check
"$venv/bin/sam" validate --lint --region us-east-1 --template-file "$repo/template.yaml"
echo "== checkov" >&2
"$repo/infra/checkov.sh"
