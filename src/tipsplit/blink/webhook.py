"""Blink webhook signatures, as Svix sends them.

A webhook can move money, so it is only believed when its HMAC matches, its
timestamp is recent, and the comparison leaks nothing through timing.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


class WebhookVerificationError(ValueError):
    """The webhook is unsigned, re-timed, tampered with or signed with another secret."""


def _secret_bytes(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ValueError("webhook secret is not base64 after 'whsec_'") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `v1,<base64>` signature Svix puts in `svix-signature`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a webhook delivery signed with `secret`."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(ts),
        "svix-signature": signature(secret, msg_id, ts, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Raise WebhookVerificationError unless one `v1` signature in the headers matches the raw body."""
    msg_id = headers.get("svix-id")
    ts_text = headers.get("svix-timestamp")
    sig_header = headers.get("svix-signature")
    if not msg_id or not ts_text or not sig_header:
        raise WebhookVerificationError("missing svix-id, svix-timestamp or svix-signature header")
    try:
        ts = int(ts_text)
    except ValueError as exc:
        raise WebhookVerificationError("svix-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("svix-timestamp is outside the 5-minute tolerance")
    expected = signature(secret, msg_id, ts, body).split(",", 1)[1]
    for candidate in sig_header.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise WebhookVerificationError("no svix-signature matches the body")
