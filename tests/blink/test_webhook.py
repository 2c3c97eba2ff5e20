"""Blink (Svix) webhook signatures: one valid signature verifies, every tampering is refused."""

import base64
import json

import pytest

from tipsplit.blink.webhook import WebhookVerificationError, signature, signed_headers, verify

SECRET = "whsec_" + base64.b64encode(b"tipsplit-test-webhook-secret-32b").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()
NOW = 1_700_000_000
BODY = json.dumps({"eventType": "receive.lightning", "paymentHash": "ab" * 32}).encode()


def headers(**overrides: str) -> dict[str, str]:
    base = signed_headers(SECRET, "msg_1", BODY, timestamp=NOW)
    base.update(overrides)
    return base


def test_valid_signature_verifies() -> None:
    verify(SECRET, headers(), BODY, now=NOW)


def test_secret_without_prefix_is_accepted() -> None:
    verify(SECRET.removeprefix("whsec_"), headers(), BODY, now=NOW)


def test_one_matching_signature_among_several_verifies() -> None:
    good = headers()["svix-signature"]
    stale = signature(OTHER_SECRET, "msg_1", NOW, BODY)
    for combined in (f"{stale} {good}", f"{good} {stale}", f"v2,abc {stale} {good}"):
        verify(SECRET, headers(**{"svix-signature": combined}), BODY, now=NOW)


def test_signature_within_tolerance_verifies() -> None:
    verify(SECRET, headers(), BODY, now=NOW + 299)
    verify(SECRET, headers(), BODY, now=NOW - 299)


@pytest.mark.parametrize(
    ("case", "hdrs", "body", "secret", "now"),
    [
        ("tampered body", headers(), BODY + b" ", SECRET, NOW),
        ("tampered timestamp", headers(**{"svix-timestamp": str(NOW + 1)}), BODY, SECRET, NOW),
        ("tampered id", headers(**{"svix-id": "msg_2"}), BODY, SECRET, NOW),
        ("other secret", headers(), BODY, OTHER_SECRET, NOW),
        ("old timestamp", headers(), BODY, SECRET, NOW + 301),
        ("future timestamp", headers(), BODY, SECRET, NOW - 301),
        ("wrong version", headers(**{"svix-signature": headers()["svix-signature"].replace("v1,", "v2,")}), BODY, SECRET, NOW),
        ("not a number timestamp", headers(**{"svix-timestamp": "soon"}), BODY, SECRET, NOW),
        ("empty signature", headers(**{"svix-signature": ""}), BODY, SECRET, NOW),
    ],
)
def test_tampering_is_refused(case: str, hdrs: dict[str, str], body: bytes, secret: str, now: int) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(secret, hdrs, body, now=now)


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_header_is_refused(missing: str) -> None:
    hdrs = headers()
    del hdrs[missing]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(SECRET, hdrs, BODY, now=NOW)


def test_old_timestamp_is_refused_even_when_correctly_signed() -> None:
    old = NOW - 6 * 60
    hdrs = signed_headers(SECRET, "msg_1", BODY, timestamp=old)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, hdrs, BODY, now=NOW)
