"""Browser sessions: the merchant's Blink key sealed inside a signed cookie.

The merchant's cookie holds only ciphertext: the key is sealed with the
runtime's KeyRing (AES-256-GCM, the same keys that protect it at rest
everywhere else) and the result is signed and timestamped with
SESSION_SECRET. The browser can neither read nor forge it, nothing about it
is kept in browser storage, and every instance sharing the keys can serve
the merchant without a session table. Signing out deletes the cookie;
rotating SESSION_SECRET ends every session at once.
"""

import json
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from tipsplit.keyring import DecryptionError, KeyRing
from tipsplit.observability import register_secrets
from tipsplit.settings import Settings

POS_COOKIE = "tipsplit_pos"
POS_MAX_AGE = 30 * 24 * 3600
SECRET_FILE = "session.secret"


@dataclass(frozen=True)
class MerchantSession:
    """A signed-in merchant: their key (kept out of repr), their BTC wallets, and the one receiving the base."""

    api_key: str = field(repr=False)
    username: str | None
    wallet_ids: tuple[str, ...]
    wallet_id: str

    def choose(self, wallet_id: str) -> "MerchantSession":
        """The same session paying the base to another of the merchant's own BTC wallets."""
        if wallet_id not in self.wallet_ids:
            raise ValueError("this wallet is not one of the signed-in account's BTC wallets")
        return replace(self, wallet_id=wallet_id)


@dataclass(frozen=True)
class WebKeys:
    """What the pages need from the runtime to seal, sign and check cookies; built once per app."""

    keyring: KeyRing
    signer: URLSafeTimedSerializer | None
    sandbox: bool
    secure_cookies: bool = False

    def cookie_flags(self, request: Request, max_age: int, samesite: str) -> dict[str, object]:
        """HttpOnly always; Secure with SECURE_COOKIES or whenever the page was reached over HTTPS.

        Behind a TLS-terminating proxy the scheme is HTTPS only if TRUSTED_PROXIES names the proxy.
        """
        return {
            "max_age": max_age, "httponly": True, "samesite": samesite,
            "secure": self.secure_cookies or request.url.scheme == "https", "path": "/",
        }


def _sandbox_secret(data_dir: Path) -> str:
    """Generated once and kept beside the sandbox's encryption key, so sessions survive restarts."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def build_keys(settings: Settings, *, sandbox: bool) -> WebKeys:
    """Key ring and signer from the settings; without SESSION_SECRET outside sandbox, no signer."""
    secret = settings.session_secret or (_sandbox_secret(settings.data_dir) if sandbox else None)
    register_secrets([secret])
    signer = URLSafeTimedSerializer(secret, salt="tipsplit.http.pages") if secret else None
    return WebKeys(KeyRing.from_settings(settings), signer, sandbox, settings.secure_cookies)


def seal_merchant(keys: WebKeys, session: MerchantSession) -> str:
    """The cookie value: signed(encrypted(json)); the API key never leaves in clear."""
    if keys.signer is None:
        raise RuntimeError("SESSION_SECRET is not set")
    plain = json.dumps({"k": session.api_key, "u": session.username, "ws": session.wallet_ids, "w": session.wallet_id})
    return keys.signer.dumps({"s": keys.keyring.encrypt(plain)}, salt="pos")


def open_merchant(keys: WebKeys, cookie: str | None) -> MerchantSession | None:
    """The session a cookie stands for, or None when it is missing, forged, expired or unreadable."""
    if not cookie or keys.signer is None:
        return None
    try:
        sealed = keys.signer.loads(cookie, max_age=POS_MAX_AGE, salt="pos")["s"]
        data = json.loads(keys.keyring.decrypt(sealed))
        return MerchantSession(data["k"], data["u"], tuple(data["ws"]), data["w"])
    except (BadSignature, DecryptionError, KeyError, TypeError, ValueError):
        return None
