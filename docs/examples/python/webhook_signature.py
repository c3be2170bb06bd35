"""Verifying a webhook the platform sent (Standard Webhooks, https://www.standardwebhooks.com).

Every delivery carries three headers:

    webhook-id:        msg_...   (the same on every retry of one delivery: deduplicate on it)
    webhook-timestamp: 1614265330   (Unix seconds when this attempt was signed)
    webhook-signature: v1,<base64>  (space-separated if there are several)

The signature is HMAC-SHA256, keyed by the base64-decoded part of the
endpoint's secret after `whsec_`, over `<webhook-id>.<webhook-timestamp>.<raw body>`.
Verify the raw bytes as received, before parsing the JSON.

Standard library only. `python3 webhook_signature.py` runs the self-check.
"""

import base64
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    pass


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value the platform computes (shared/src/webhook_signing.rs)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: dict, body: bytes, now: float | None = None) -> None:
    """Raises InvalidSignature unless `body` was signed with `secret` recently.

    `headers` is looked up case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        signatures = lower["webhook-signature"].split()
    except (KeyError, ValueError) as error:
        raise InvalidSignature(f"missing or malformed webhook headers: {error}") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("the timestamp is too old or too new (replayed?)")
    expected = sign(secret, message_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures:
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise InvalidSignature("no signature matches")


def self_check() -> None:
    """The Standard Webhooks specification's own test vector, which the
    server's signer is tested against too, and two forgeries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    assert sign(secret, headers["webhook-id"], 1614265330, body) == headers["webhook-signature"]
    verify(secret, headers, body, now=1614265330 + 10)
    for forged_body, at in ((b'{"test": 2432232315}', 1614265330), (body, 1614265330 + 3600)):
        try:
            verify(secret, headers, forged_body, now=at)
        except InvalidSignature:
            continue
        raise AssertionError("a forged or stale delivery was accepted")


if __name__ == "__main__":
    self_check()
    print("webhook signature self-check: ok")
