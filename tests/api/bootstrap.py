"""Makes the identities the outside-in API checks run as, on a running local
server, and prints them as shell assignments:

- a new tenant (registered like any customer signs up), made `enterprise`
  by the platform admin so the fuzzer is not rate limited into seeing only
  429s, with credits to spend;
- its owner's access token and credentials;
- an API key of that tenant holding every scope;
- the platform admin's access token.

Standard library only: it runs before any tool is installed.

    python3 tests/api/bootstrap.py http://127.0.0.1:3567 admin@platform.local <password>
"""

import json
import shlex
import sys
import time
import urllib.error
import urllib.request
import uuid


def call(base, method, path, body=None, token=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("accept", "application/json")
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        sys.exit(f"bootstrap: {method} {path} answered {status}: {text}")
    return json.loads(text) if text else None


def main():
    base, admin_email, admin_password = sys.argv[1:4]
    admin = call(base, "POST", "/v1/auth/login", {"email": admin_email, "password": admin_password})["access_token"]

    run = uuid.uuid4().hex[:10]
    email = f"owner-{run}@api-checks.example.com"
    password = f"Checks-{run}-pass!"
    registered = call(base, "POST", "/v1/auth/register", {
        "email": email, "password": password, "password_confirm": password,
        "first_name": "Api", "last_name": "Checks", "tenant_name": f"API checks {run}",
    })
    tenant_id = registered["user"]["tenant_id"]

    # The tenant becomes active once the provisioner has run (asynchronously).
    deadline = time.monotonic() + 60
    while call(base, "GET", f"/v1/tenants/{tenant_id}", token=admin)["status"] != "active":
        if time.monotonic() > deadline:
            sys.exit("bootstrap: the tenant did not become active within 60 s")
        time.sleep(0.2)
    call(base, "PATCH", f"/v1/tenants/{tenant_id}", {"plan": "enterprise"}, token=admin)
    call(base, "POST", f"/v1/tenants/{tenant_id}/credits", {"amount": 100000, "reason": "api checks"}, token=admin)

    owner = call(base, "POST", "/v1/auth/login", {"email": email, "password": password})["access_token"]
    scopes = ["tenant:read", "tenant:write", "users:read", "users:write", "credits:read", "usage:write",
              "customers:read", "customers:write", "tryons:read", "tryons:write", "webhooks:manage", "integrations:manage", "workflows:manage",
              "audit:read", "projects:read", "projects:write"]
    key = call(base, "POST", "/v1/api-keys", {"name": f"api checks {run}", "scopes": scopes}, token=owner)["secret"]

    values = {
        "TENANT_ID": tenant_id, "OWNER_EMAIL": email, "OWNER_PASSWORD": password,
        "OWNER_TOKEN": owner, "API_KEY": key, "ADMIN_TOKEN": admin,
    }
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
