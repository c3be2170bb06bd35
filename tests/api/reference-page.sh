#!/usr/bin/env bash
# /docs renders in a real browser: headless Chromium (Debian's package,
# installed here if missing) loads the page from the local server with every
# request going to it, runs Redoc, and the rendered DOM must show the
# document's operations with no script error. Writes a screenshot to $1.
set -euo pipefail
out="${1:-.}"
: "${BASE_URL:?}"
if ! command -v chromium >/dev/null; then
  echo "reference-page.sh: installing Debian's chromium" >&2
  if [[ $EUID -eq 0 ]]; then apt-get install -y -qq chromium >/dev/null; else sudo apt-get install -y -qq chromium >/dev/null; fi
fi
# The flags keep Chromium off the network it cannot reach here (it would
# otherwise try Google's hosts at every start).
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --window-size=1400,1000 --virtual-time-budget=15000)
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium "${flags[@]}" --user-data-dir="$profile" --enable-logging=stderr --v=0 --dump-dom "$BASE_URL/docs" \
  >"$out/reference.html" 2>"$out/reference-console.log" || true
chromium "${flags[@]}" --user-data-dir="$profile" --screenshot="$out/reference.png" "$BASE_URL/docs" >/dev/null 2>&1 || true
if grep -E "CONSOLE.*(Uncaught|Error)" "$out/reference-console.log"; then
  echo "reference-page.sh: the page logged a script error"; exit 1
fi
# Redoc draws operations lazily (as they scroll into view), so the check is
# what it draws at once: the document's title and overview, and one entry
# per tag in the navigation, taken from the document itself.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python3 - "$repo/docs/openapi.json" "$out/reference.html" <<'PY' || exit 1
import html, json, re, sys
doc = json.load(open(sys.argv[1]))
text = html.unescape(re.sub(r"<[^>]+>", " ", open(sys.argv[2]).read()))
expected = [doc["info"]["title"], "A multi-tenant platform API"] + [tag["name"] for tag in doc.get("tags", [])]
missing = [e for e in expected if e not in text]
if missing:
    sys.exit(f"reference-page.sh: the rendered page does not show {missing} (see {sys.argv[2]})")
PY
tags="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("tags", [])))' "$repo/docs/openapi.json")"
echo "reference page /docs renders in headless Chromium (title, overview, $tags tags; screenshot $out/reference.png)"
