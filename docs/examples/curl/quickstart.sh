#!/usr/bin/env bash
# The common flows of the API with curl (bash, curl, openssl, base64, and
# python3 to pick fields out of JSON and to listen for webhooks: curl cannot).
#
#   BASE_URL=http://127.0.0.1:3000 OWNER_EMAIL=... OWNER_PASSWORD=... docs/examples/curl/quickstart.sh
#
# 1. sign in as a tenant admin (the owner);
# 2. create an API key (its secret is shown once) and use it from then on;
# 3. upsert a customer by your own `external_id`;
# 4. upload a person photo and a garment photo: create each, PUT the bytes
#    to the presigned URL, confirm;
# 5. start a try-on and poll it until it finishes; the balance drops by its price;
# 6. webhooks: start a local receiver, register it as an endpoint, send a
#    test event, verify the signature of what arrives (openssl);
# 7. clean up: delete the endpoint, revoke the key.
#
# The tenant needs a few credits (a platform admin grants them:
# `POST /v1/tenants/{id}/credits`); tests/api/bootstrap.py makes such a tenant.
# Exits non-zero on any unexpected answer.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
images="$here/../images"
BASE_URL="${BASE_URL:-http://127.0.0.1:3000}"
BASE_URL="${BASE_URL%/}"
: "${OWNER_EMAIL:?set OWNER_EMAIL}" "${OWNER_PASSWORD:?set OWNER_PASSWORD}"

work="$(mktemp -d)"
receiver_pid=""
key_id=""
endpoint_id=""
finished=""
cleanup() {
  [[ -n "$receiver_pid" ]] && kill "$receiver_pid" 2>/dev/null
  # On a failure part-way, still delete the endpoint and revoke the key.
  [[ -n "$key_id" && -z "$finished" ]] && (finish) >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "[curl] $*"; }
fail() { echo "[curl] FAILED: $*" >&2; exit 1; }

# pick NAME=path ... < body: sets shell variables from fields of a JSON
# document, by dotted paths (`user.tenant_id`, `items.0.result_url`); strings
# raw, anything else as JSON. One python3 start for all the fields.
pick() {
  local out
  out="$(python3 -S -c '
import json, shlex, sys
document = json.load(sys.stdin)
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    value = document
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    print(f"{name}={shlex.quote(value if isinstance(value, str) else json.dumps(value))}")
' "$@")" || fail "no $* in the answer"
  eval "$out"
}

# api METHOD PATH [BODY] -- [curl args...]: calls the API with $AUTH
# (header args), writes the answer to $work/body, checks the status is one
# of $EXPECT (default 200) and prints the body.
api() {
  local method="$1" path="$2" body="${3:-}"
  shift $(($# < 3 ? $# : 3))
  local args=(-sS -o "$work/body" -w '%{http_code}' -X "$method" -H 'accept: application/json' "${AUTH[@]}")
  [[ -n "$body" ]] && args+=(-H 'content-type: application/json' --data-binary "$body")
  local status
  status="$(curl "${args[@]}" "$@" "$BASE_URL$path")"
  if [[ " ${EXPECT:-200} " != *" $status "* ]]; then
    fail "$method $path answered $status (expected ${EXPECT:-200}): $(cat "$work/body")"
  fi
  cat "$work/body"
}

# sign SECRET MSG_ID TIMESTAMP BODY_FILE: the webhook-signature value
# (Standard Webhooks: HMAC-SHA256 keyed by the base64 part of whsec_..., over
# "<id>.<timestamp>.<body>", base64).
sign() {
  local key_hex
  key_hex="$(printf '%s' "${1#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  printf 'v1,%s' "$({ printf '%s.%s.' "$2" "$3"; cat "$4"; } |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64)"
}

# verify SECRET MSG_ID TIMESTAMP SIGNATURES BODY_FILE [NOW]: succeeds if one
# v1 signature matches and the timestamp is within 5 minutes.
verify() {
  local now="${6:-$(date +%s)}" expected candidate
  (( ${3} > now - 300 && ${3} < now + 300 )) || return 1
  expected="$(sign "$1" "$2" "$3" "$5")"
  for candidate in $4; do
    [[ "$candidate" == "$expected" ]] && return 0
  done
  return 1
}

# The specification's own test vector (the server's signer is tested against
# it too), and a forgery.
self_check() {
  printf '%s' '{"test": 2432232314}' >"$work/vector"
  printf '%s' '{"test": 2432232315}' >"$work/forged"
  local secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" id="msg_p5jXN8AQM9LWM0D4loKWxJek"
  local good="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
  [[ "$(sign "$secret" "$id" 1614265330 "$work/vector")" == "$good" ]] || fail "the signer does not reproduce the vector"
  verify "$secret" "$id" 1614265330 "$good" "$work/vector" 1614265340 || fail "the vector does not verify"
  ! verify "$secret" "$id" 1614265330 "$good" "$work/forged" 1614265340 || fail "a forged body verified"
  ! verify "$secret" "$id" 1614265330 "$good" "$work/vector" 1614268930 || fail "a stale delivery verified"
}

upload_photo() { # customer_id kind -> sets $photo
  local file="$images/$2.png" size created ready status
  size="$(wc -c <"$file" | tr -d ' ')"
  created="$(EXPECT=201 api POST "/v1/customers/$1/photos" "{\"content_type\":\"image/png\",\"size_bytes\":$size,\"kind\":\"$2\"}")"
  pick photo=id url=upload.url content_type=upload.headers.content-type <<<"$created"
  # Straight to the object store, with the content type it signed.
  status="$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "content-type: $content_type" --data-binary "@$file" "$url")"
  [[ "$status" == 2* ]] || fail "the upload answered $status"
  ready="$(api POST "/v1/customers/$1/photos/$photo/confirm")"
  pick photo_status=status photo_size=size_bytes <<<"$ready"
  [[ "$photo_status" == ready && "$photo_size" == "$size" ]] || fail "not ready: $ready"
  say "  $2 photo $photo: uploaded $size bytes, confirmed ready"
}

run="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"

say "signing in as $OWNER_EMAIL at $BASE_URL"
AUTH=()
login="$(api POST /v1/auth/login "$(python3 -S -c 'import json,os; print(json.dumps({"email": os.environ["OWNER_EMAIL"], "password": os.environ["OWNER_PASSWORD"]}))')")"
pick access_token=access_token role=user.role tenant_id=user.tenant_id <<<"$login"
OWNER=(-H "authorization: Bearer $access_token")
say "  signed in: role $role, tenant $tenant_id"

say "creating an API key (the secret is shown only in this answer)"
AUTH=("${OWNER[@]}")
key="$(EXPECT=201 api POST /v1/api-keys "{\"name\":\"curl example $run\",\"expires_in_days\":1,
  \"scopes\":[\"customers:read\",\"customers:write\",\"tryons:read\",\"tryons:write\",\"credits:read\",\"webhooks:manage\"]}")"
pick key_id=id secret=secret prefix=prefix last_four=last_four <<<"$key"
[[ "$secret" == sk_live_* || "$secret" == sk_test_* ]] || fail "unexpected key: $key"
SHOP=(-H "x-api-key: $secret")
say "  key $key_id ($prefix...$last_four)"

finish() {
  AUTH=("${SHOP[@]}")
  if [[ -n "$endpoint_id" ]]; then EXPECT=204 api DELETE "/v1/webhooks/$endpoint_id" >/dev/null; fi
  AUTH=("${OWNER[@]}")
  api DELETE "/v1/api-keys/$key_id" >/dev/null
  finished=yes
  say "cleaned up: endpoint deleted, key revoked"
}

AUTH=("${SHOP[@]}")
credits="$(api GET /v1/credits)"
pick balance=balance <<<"$credits"
say "balance: $balance credits"
((balance >= 1)) || fail "the tenant has no credits: a platform admin grants some with POST /v1/tenants/{id}/credits"

say "upserting a customer by external_id"
customer="$(EXPECT=201 api POST /v1/customers "{\"external_id\":\"shopper-$run\",\"name\":\"Ada\",\"email\":\"ada-$run@example.com\",\"metadata\":{\"tier\":\"gold\"}}")"
pick customer_id=id <<<"$customer"
again="$(api POST /v1/customers "{\"external_id\":\"shopper-$run\",\"name\":\"Ada Lovelace\"}")"
pick again_id=id again_name=name <<<"$again"
[[ "$again_id" == "$customer_id" && "$again_name" == "Ada Lovelace" ]] || fail "upsert did not update: $again"
say "  customer $customer_id (created 201, updated 200)"

say "uploading photos: create, PUT to the presigned URL, confirm"
upload_photo "$customer_id" person
person="$photo"
upload_photo "$customer_id" garment
garment="$photo"

say "starting a try-on"
session="$(EXPECT=201 api POST /v1/tryons "{\"customer_id\":\"$customer_id\",\"photo_id\":\"$person\",\"quality\":\"sd\",
  \"items\":[{\"product_id\":\"sku-$run\",\"garment_photo_id\":\"$garment\",\"size\":\"M\"}]}" -H "idempotency-key: tryon-$run")"
pick session_id=id price=pricing.total balance_after=charge.balance_after status=status <<<"$session"
((balance_after == balance - price)) || fail "charge does not add up: $session"
say "  session $session_id: $status, charged $price credit(s)"
deadline=$((SECONDS + 90))
while [[ "$status" == queued || "$status" == processing ]]; do
  ((SECONDS < deadline)) || fail "the try-on is still $status after 90 s"
  sleep 0.25
  state="$(api GET "/v1/tryons/$session_id")"
  pick status=status <<<"$state"
done
[[ "$status" == completed ]] || fail "the try-on did not complete: $state"
pick result_url=items.0.result_url completed=progress.completed total=progress.total <<<"$state"
curl -sSf -o "$work/result.png" "$result_url"
[[ "$(head -c 4 "$work/result.png" | od -An -tx1 | tr -d ' \n')" == 89504e47 ]] || fail "the result is not a PNG"
say "  completed: $completed/$total items, result $(wc -c <"$work/result.png" | tr -d ' ') bytes of PNG"
credits="$(api GET /v1/credits)"
pick after=balance <<<"$credits"
((after == balance - price)) || fail "balance $after, expected $((balance - price))"
say "  balance $balance -> $after"

say "webhooks: self-check of the signature scheme with the specification's vector"
self_check
# A tiny receiver (curl cannot listen): stores each delivery's headers and
# raw body, answers 204.
mkdir -p "$work/inbox"
python3 -S -u -c '
import http.server, json, pathlib, sys
inbox = pathlib.Path(sys.argv[1])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        n = len(list(inbox.glob("*.body")))
        (inbox / f"{n}.headers").write_text(json.dumps({k.lower(): v for k, v in self.headers.items()}))
        (inbox / f"{n}.body").write_bytes(body)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
' "$work/inbox" >"$work/port" &
receiver_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
receiver_url="http://127.0.0.1:$(cat "$work/port")/webhooks"
say "  receiver listening on $receiver_url"
endpoint="$(EXPECT=201 api POST /v1/webhooks "{\"url\":\"$receiver_url\",\"description\":\"curl example $run\",\"event_types\":[\"webhook.test\"]}")"
pick endpoint_id=id webhook_secret=secret <<<"$endpoint" # the secret is shown once: store it
sent="$(EXPECT=202 api POST "/v1/webhooks/$endpoint_id/test")"
pick delivery_id=delivery_id <<<"$sent"
say "  endpoint $endpoint_id, test delivery $delivery_id queued"
deadline=$((SECONDS + 60))
until [[ -f "$work/inbox/0.body" ]]; do
  ((SECONDS < deadline)) || fail "no delivery within 60 s"
  sleep 0.2
done
pick webhook_id=webhook-id timestamp=webhook-timestamp signatures=webhook-signature <"$work/inbox/0.headers"
verify "$webhook_secret" "$webhook_id" "$timestamp" "$signatures" "$work/inbox/0.body" ||
  fail "the delivery's signature does not verify"
pick event_type=type <"$work/inbox/0.body"
[[ "$event_type" == webhook.test ]] || fail "unexpected payload: $(cat "$work/inbox/0.body")"
say "  received $event_type ($webhook_id): signature verified"
deadline=$((SECONDS + 30))
while :; do
  page="$(api GET "/v1/webhooks/$endpoint_id/deliveries")"
  found="$(python3 -S -c '
import json, sys
page = json.load(sys.stdin)
print(json.dumps(next((d for d in page["data"] if d["id"] == sys.argv[1] and d["status"] == "succeeded"), None)))
' "$delivery_id" <<<"$page")"
  [[ "$found" != null ]] && break
  ((SECONDS < deadline)) || fail "the delivery log shows no success: $page"
  sleep 0.25
done
pick logged_id=webhook_id logged_status=status attempts=attempt_count answered=attempts.0.status_code <<<"$found"
[[ "$logged_id" == "$webhook_id" ]] || fail "the log names another webhook-id: $found"
say "  delivery log: $logged_status after $attempts attempt(s), answered $answered"

finish
say "all flows ok"
