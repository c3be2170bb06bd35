"""Deletes the webhook endpoints a fuzz run left in the checks' tenant.

Every event fans out to each endpoint, and the fuzzer's endpoints point at
hosts that do not answer, so each one keeps the webhook dispatcher retrying
in the background, on the same single-threaded local emulator the next run
needs. Deleting them is the teardown of the run that made them (whether
they are what slows the API-key run is open: docs/performance.md).
Standard library only.

    python3 tests/api/cleanup.py http://127.0.0.1:3567 <API key with webhooks:manage>
"""

import json
import sys
import urllib.error
import urllib.request


def call(base, method, path, key):
    request = urllib.request.Request(base + path, method=method)
    request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, None


def main():
    base, key = sys.argv[1:3]
    deleted = 0
    while True:
        status, page = call(base, "GET", "/v1/webhooks?limit=100", key)
        if status != 200:
            sys.exit(f"cleanup: listing the endpoints answered {status}")
        endpoints = page["data"]
        if not endpoints:
            break
        for endpoint in endpoints:
            status, _ = call(base, "DELETE", f"/v1/webhooks/{endpoint['id']}", key)
            if status not in (204, 404):
                sys.exit(f"cleanup: deleting endpoint {endpoint['id']} answered {status}")
            deleted += 1
    print(f"cleanup: deleted {deleted} webhook endpoint(s) the fuzzer made")


if __name__ == "__main__":
    main()
