"""Legacy `.tip-store.json` files as the original app wrote them, generated for the migration tests."""

import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

PLAINTEXT_KEY = "blink_LegacyPlaintextKey_NEVER_STORE_ME_4b1d"
CRYPTOJS_KEY = "blink_LegacyCryptoJsKey_NEVER_STORE_ME_9e2f"
PASSPHRASE = "legacy-app-encryption-key"
DAY_MS = 24 * 3600 * 1000


def cryptojs_encrypt(text: str, passphrase: str) -> str:
    """What CryptoJS.AES.encrypt(text, passphrase).toString() produces: OpenSSL's salted format."""
    done = subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-md", "md5", "-base64", "-A", "-pass", f"pass:{passphrase}"],
        input=text.encode(), capture_output=True, check=True,
    )
    return done.stdout.decode().strip()


def entry(index: int, *, api_key: str = PLAINTEXT_KEY, age_ms: int = 60_000, **overrides: Any) -> dict[str, Any]:
    """One entry; every third has several recipients, the rest the old single `tipRecipient`."""
    base = 1_000 + index % 5_000
    tip = (base * (10 + index % 3 * 5)) // 100
    body: dict[str, Any] = {
        "baseAmount": base,
        "tipAmount": tip,
        "tipPercent": 10 + index % 3 * 5,
        "userApiKey": api_key,
        "userWalletId": f"wallet-{index % 7}",
        "displayCurrency": "USD",
        "baseAmountDisplay": round(base / 1000, 2),
        "tipAmountDisplay": round(tip / 1000, 2),
        "timestamp": int(time.time() * 1000) - age_ms,
    }
    if index % 3 == 0:
        body["tipRecipients"] = [{"username": "alice_tips", "share": 50}, {"username": "bob_tips", "share": 50}]
    else:
        body["tipRecipient"] = "carol_tips"
    body.update(overrides)
    return body


def generate(path: Path, count: int, *, expired_every: int = 0, cryptojs_every: int = 0) -> dict[str, dict[str, Any]]:
    """Write `count` entries; every n-th expired (2 days old) or with a CryptoJS key, if asked."""
    sealed = cryptojs_encrypt(CRYPTOJS_KEY, PASSPHRASE) if cryptojs_every else ""
    entries = {}
    for i in range(count):
        old = bool(expired_every) and i % expired_every == 0
        legacy = bool(cryptojs_every) and i % cryptojs_every == 1
        entries[secrets.token_hex(32)] = entry(
            i, api_key=sealed if legacy else PLAINTEXT_KEY, age_ms=2 * DAY_MS if old else 60_000
        )
    path.write_text(json.dumps(entries, indent=2))
    return entries
