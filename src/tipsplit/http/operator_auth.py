"""The operator: who may use the dashboard, read statistics, metrics and the API docs, and retry payments.

OPERATOR_TOKEN proves it, sent as `Authorization: Bearer <token>` (scripts, Prometheus) or exchanged once at
`/dashboard/login` for a session cookie. The cookie is a random id with nothing derived from the token in it.
Redis keeps the session for OPERATOR_MAX_AGE under a hash of that id, holding an HMAC of the token keyed by
the id: signing out ends the session on every instance, changing OPERATOR_TOKEN ends every session, and
neither the token nor a copy of Redis yields a usable cookie. Sign-in attempts and wrong Bearer tokens count
against the caller's IP (LOGIN_ATTEMPTS per LOGIN_WINDOW_SECONDS), so the token cannot be guessed quickly.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from tipsplit.http.errors import error_body
from tipsplit.http.limits import client_ip
from tipsplit.store.stack import StoreStack

OPERATOR_COOKIE = "tipsplit_operator"
OPERATOR_MAX_AGE = 12 * 3600
LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_SECONDS = 15 * 60


class TooManyAttempts(HTTPException):
    """A client IP used up its operator sign-in attempts; answered 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        message = f"too many operator sign-in attempts from this address; try again in {retry_after} s"
        super().__init__(429, error_body(message, retryAfter=retry_after), {"Retry-After": str(retry_after)})
        self.retry_after = retry_after


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _fingerprint(session_id: str, token: str) -> str:
    return hmac.new(session_id.encode(), token.encode(), hashlib.sha256).hexdigest()


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass(frozen=True)
class OperatorGate:
    """Checks operator access for one app; built once from the runtime's settings and store."""

    token: str | None
    sandbox: bool
    public_operations: bool
    store: StoreStack

    @property
    def open(self) -> bool:
        """In sandbox mode with no OPERATOR_TOKEN the dashboard is open (and says so)."""
        return self.sandbox and not self.token

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison with OPERATOR_TOKEN."""
        return bool(self.token) and secrets.compare_digest(given.encode(), (self.token or "").encode())

    async def count_attempt(self, request: Request) -> None:
        """Count one sign-in attempt of the caller's IP; raises TooManyAttempts once they are used up."""
        decision = await self.store.edge.check_login_limit(client_ip(request), LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS)
        if not decision.allowed:
            raise TooManyAttempts(decision.retry_after)

    async def signed_in(self, request: Request) -> bool:
        """An open sandbox dashboard, `Authorization: Bearer <OPERATOR_TOKEN>`, or a live session cookie."""
        if self.open:
            return True
        if not self.token:
            return False
        bearer = _bearer(request)
        if bearer is not None:
            if self.token_matches(bearer):
                return True
            await self.count_attempt(request)
            return False
        session_id = request.cookies.get(OPERATOR_COOKIE)
        if not session_id:
            return False
        stored = await self.store.edge.get_operator_session(_session_key(session_id))
        return stored is not None and secrets.compare_digest(stored, _fingerprint(session_id, self.token))

    async def may_read_operations(self, request: Request) -> bool:
        """Statistics, metrics and API docs: public with PUBLIC_METRICS or in sandbox mode, else the operator's."""
        return self.public_operations or self.sandbox or await self.signed_in(request)

    async def start_session(self) -> str | None:
        """A new session's cookie value, or None when Redis cannot keep it."""
        if not self.token:
            return None
        session_id = secrets.token_urlsafe(32)
        kept = await self.store.edge.put_operator_session(
            _session_key(session_id), _fingerprint(session_id, self.token), OPERATOR_MAX_AGE
        )
        return session_id if kept else None

    async def end_session(self, request: Request) -> None:
        session_id = request.cookies.get(OPERATOR_COOKIE)
        if session_id:
            await self.store.edge.delete_operator_session(_session_key(session_id))


def operator_required() -> HTTPException:
    """The 401 of an operations endpoint reached without the operator's credentials."""
    message = "operator sign-in required: send Authorization: Bearer <OPERATOR_TOKEN> (or set PUBLIC_METRICS=true)"
    return HTTPException(401, error_body(message), {"WWW-Authenticate": "Bearer"})
