"""The common flows of the API, in Python with the standard library only.

    BASE_URL=http://127.0.0.1:3000 OWNER_EMAIL=... OWNER_PASSWORD=... python3 docs/examples/python/quickstart.py

1. sign in as a tenant admin (the owner);
2. create an API key (its secret is shown once) and use it from then on;
3. upsert a customer by your own `external_id`;
4. upload a person photo and a garment photo: create each, PUT the bytes
   to the presigned URL, confirm;
5. start a try-on and poll it until it finishes; the balance drops by its price;
6. webhooks: start a local receiver, register it as an endpoint, send a
   test event, verify the signature of what arrives;
7. clean up: delete the endpoint, revoke the key.

The tenant needs a few credits (a platform admin grants them:
`POST /v1/tenants/{id}/credits`); tests/api/bootstrap.py makes such a tenant.
Exits non-zero on any unexpected answer.
"""

import http.server
import json
import os
import pathlib
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.dont_write_bytecode = True  # keep docs/examples free of __pycache__
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import webhook_signature  # noqa: E402

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:3000").rstrip("/")
IMAGES = pathlib.Path(__file__).resolve().parent.parent / "images"


class Unexpected(Exception):
    pass


def say(text):
    print(f"[python] {text}", flush=True)


def request(method, url, *, body=None, data=None, headers=None, expect=(200,)):
    """One HTTP exchange; answers the parsed JSON body (or None). Any status
    outside `expect` is an error showing the API's error body."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    if status not in expect:
        raise Unexpected(f"{method} {url} answered {status} (expected {expect}): {text.decode(errors='replace')}")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class Api:
    """The API with one credential: `Authorization: Bearer <token>` for a
    person, `X-API-Key: <key>` for a machine."""

    def __init__(self, token=None, api_key=None):
        self.headers = {"accept": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        if api_key:
            self.headers["x-api-key"] = api_key

    def call(self, method, path, body=None, expect=(200,), headers=None):
        return request(method, BASE_URL + path, body=body, expect=expect, headers={**self.headers, **(headers or {})})


def check(condition, what):
    if not condition:
        raise Unexpected(what)


def upload_photo(api, customer_id, kind):
    data = (IMAGES / f"{kind}.png").read_bytes()
    photo = api.call("POST", f"/v1/customers/{customer_id}/photos",
                     {"content_type": "image/png", "size_bytes": len(data), "kind": kind}, expect=(201,))
    upload = photo["upload"]
    # Straight to the object store, with exactly the headers it names (they are signed).
    request(upload["method"], upload["url"], data=data, headers=upload["headers"], expect=(200, 201, 204))
    ready = api.call("POST", f"/v1/customers/{customer_id}/photos/{photo['id']}/confirm")
    check(ready["status"] == "ready" and ready["size_bytes"] == len(data), f"photo not ready: {ready}")
    say(f"  {kind} photo {photo['id']}: uploaded {len(data)} bytes, confirmed ready")
    return photo["id"]


def poll(what, fetch, done, timeout=90, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise Unexpected(f"{what}: not done after {timeout} s: {value}")
        time.sleep(interval)


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 (an ephemeral port). Deliveries
    it verifies land in `self.verified`; ones that fail verification get a
    400 and land in `self.rejected`."""

    def __init__(self):
        self.secret = None
        self.verified, self.rejected = queue.Queue(), queue.Queue()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    webhook_signature.verify(receiver.secret, dict(self.headers.items()), body)
                except webhook_signature.InvalidSignature as error:
                    receiver.rejected.put(str(error))
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.verified.put((self.headers["webhook-id"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    run = uuid.uuid4().hex[:8]
    email, password = os.environ["OWNER_EMAIL"], os.environ["OWNER_PASSWORD"]

    say(f"signing in as {email} at {BASE_URL}")
    login = request("POST", f"{BASE_URL}/v1/auth/login", body={"email": email, "password": password})
    owner = Api(token=login["access_token"])
    say(f"  signed in: role {login['user']['role']}, tenant {login['user']['tenant_id']}")

    say("creating an API key (the secret is shown only in this answer)")
    key = owner.call("POST", "/v1/api-keys", {
        "name": f"python example {run}", "expires_in_days": 1,
        "scopes": ["customers:read", "customers:write", "tryons:read", "tryons:write", "credits:read",
                   "webhooks:manage"],
    }, expect=(201,))
    check(key["secret"].startswith(("sk_live_", "sk_test_")), f"unexpected key: {key}")
    shop = Api(api_key=key["secret"])
    say(f"  key {key['id']} ({key['prefix']}...{key['last_four']})")

    receiver = None
    endpoint = None
    try:
        balance = shop.call("GET", "/v1/credits")["balance"]
        say(f"balance: {balance} credits")
        check(balance >= 1, "the tenant has no credits: a platform admin grants some with "
                            "POST /v1/tenants/{id}/credits (tests/api/bootstrap.py does)")

        say("upserting a customer by external_id")
        customer = shop.call("POST", "/v1/customers", {"external_id": f"shopper-{run}", "name": "Ada",
                                                       "email": f"ada-{run}@example.com",
                                                       "metadata": {"tier": "gold"}}, expect=(201,))
        again = shop.call("POST", "/v1/customers", {"external_id": f"shopper-{run}", "name": "Ada Lovelace"})
        check(again["id"] == customer["id"] and again["name"] == "Ada Lovelace", f"upsert did not update: {again}")
        say(f"  customer {customer['id']} (created 201, updated 200)")

        say("uploading photos: create, PUT to the presigned URL, confirm")
        person = upload_photo(shop, customer["id"], "person")
        garment = upload_photo(shop, customer["id"], "garment")

        say("starting a try-on")
        session = shop.call("POST", "/v1/tryons", {
            "customer_id": customer["id"], "photo_id": person, "quality": "sd",
            "items": [{"product_id": f"sku-{run}", "garment_photo_id": garment, "size": "M"}],
        }, expect=(201,), headers={"idempotency-key": f"tryon-{run}"})
        price = session["pricing"]["total"]
        check(session["charge"]["balance_after"] == balance - price, f"charge does not add up: {session}")
        say(f"  session {session['id']}: {session['status']}, charged {price} credit(s)")
        done = poll("the try-on", lambda: shop.call("GET", f"/v1/tryons/{session['id']}"),
                    lambda s: s["status"] not in ("queued", "processing"))
        check(done["status"] == "completed", f"the try-on did not complete: {done}")
        result = done["items"][0]["result_url"]
        image = request("GET", result)
        check(isinstance(image, bytes) and image.startswith(b"\x89PNG"), "the result is not a PNG")
        say(f"  completed: {done['progress']['completed']}/{done['progress']['total']} items, "
            f"result {len(image)} bytes of PNG")
        after = shop.call("GET", "/v1/credits")["balance"]
        check(after == balance - price, f"balance {after}, expected {balance - price}")
        say(f"  balance {balance} -> {after}")

        say("webhooks: self-check of the signature scheme with the specification's vector")
        webhook_signature.self_check()
        receiver = Receiver()
        say(f"  receiver listening on {receiver.url}")
        endpoint = shop.call("POST", "/v1/webhooks", {"url": receiver.url, "description": f"python example {run}",
                                                      "event_types": ["webhook.test"]}, expect=(201,))
        receiver.secret = endpoint["secret"]  # shown once: store it
        sent = shop.call("POST", f"/v1/webhooks/{endpoint['id']}/test", expect=(202,))
        say(f"  endpoint {endpoint['id']}, test delivery {sent['delivery_id']} queued")
        try:
            webhook_id, payload = receiver.verified.get(timeout=60)
        except queue.Empty:
            rejected = [] if receiver.rejected.empty() else [receiver.rejected.get()]
            raise Unexpected(f"no verified delivery within 60 s (rejected: {rejected})") from None
        check(payload.get("type") == "webhook.test", f"unexpected payload: {payload}")
        say(f"  received {payload['type']} ({webhook_id}): signature verified")
        delivery = poll("the delivery log", lambda: shop.call("GET", f"/v1/webhooks/{endpoint['id']}/deliveries"),
                        lambda page: any(d["id"] == sent["delivery_id"] and d["status"] == "succeeded"
                                         for d in page["data"]), timeout=30)
        logged = next(d for d in delivery["data"] if d["id"] == sent["delivery_id"])
        check(logged["webhook_id"] == webhook_id, f"the log names another webhook-id: {logged}")
        say(f"  delivery log: {logged['status']} after {logged['attempt_count']} attempt(s), "
            f"answered {logged['attempts'][-1]['status_code']}")
    finally:
        if endpoint:
            shop.call("DELETE", f"/v1/webhooks/{endpoint['id']}", expect=(204,))
        if receiver:
            receiver.close()
        owner.call("DELETE", f"/v1/api-keys/{key['id']}")
        say("cleaned up: endpoint deleted, key revoked")
    say("all flows ok")


if __name__ == "__main__":
    try:
        main()
    except (Unexpected, KeyError, urllib.error.URLError) as error:
        print(f"[python] FAILED: {error!r}", file=sys.stderr)
        sys.exit(1)
