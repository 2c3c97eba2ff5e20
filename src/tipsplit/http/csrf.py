"""Cross-site request forgery protection for every state-changing route of the pages.

Two checks, both applied to every POST of the pages:

- **Origin.** Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`). Anything but this
  service's own origin is refused. A request with neither header (curl, a script) is judged by the token alone.
- **Token.** A signed double-submit token: the `tipsplit_csrf` cookie holds a random id, and each form carries
  that id signed with SESSION_SECRET (`csrf_token` field; `X-CSRF-Token` header for the page's fetches). A page
  on another site can make the browser send the cookie, but can neither read the token nor forge one.

Without it a hidden auto-submitting form on any page the till's browser opened could sign the till in to an
attacker's Blink account, and the base of every later sale would go to the attacker.
"""

import re
import secrets
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from itsdangerous import BadSignature

from tipsplit.http.deps import PageKeys
from tipsplit.http.errors import error_body
from tipsplit.http.sessions import POS_MAX_AGE, WebKeys
from tipsplit.http.templating import templates

CSRF_COOKIE = "tipsplit_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_MAX_AGE = POS_MAX_AGE
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _origin(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme, "")
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


def cross_site_reason(request: Request) -> str | None:
    """Why the browser's own headers show this request comes from another site, or None."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    own = _origin(request.url.scheme, request.url.netloc)
    scheme, sep, netloc = origin.strip().partition("://")
    if not sep or _origin(scheme.lower(), netloc) != own:
        return (f"cross-origin request refused (Origin {origin[:100]} is not {own}; behind a TLS proxy, "
                "list the proxy in TRUSTED_PROXIES and keep the Host header)")
    return None


def _cookie_id(request: Request) -> str | None:
    value = request.cookies.get(CSRF_COOKIE)
    return value if value and _ID_RE.fullmatch(value) else None


def render(request: Request, keys: WebKeys, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A page whose forms carry a CSRF token; the token's cookie is (re)issued with it."""
    cookie_id = _cookie_id(request) or secrets.token_urlsafe(32)
    token = keys.signer.dumps(cookie_id, salt="csrf") if keys.signer is not None else ""
    response = templates.TemplateResponse(request, name, {**context, "csrf_token": token}, status_code=status_code)
    if keys.signer is not None:
        response.set_cookie(CSRF_COOKIE, cookie_id, **keys.cookie_flags(request, CSRF_MAX_AGE, "lax"))  # type: ignore[arg-type]
    return response


def _refused(message: str) -> HTTPException:
    return HTTPException(status_code=403, detail=error_body(message, field=CSRF_FIELD))


async def _submitted_token(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").split(";")[0].strip().lower() in FORM_TYPES:
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_csrf(request: Request, keys: PageKeys) -> None:
    """Refuse (403, JSON naming `csrf_token`) a state-changing request another site could have sent."""
    reason = cross_site_reason(request)
    if reason is not None:
        raise _refused(reason)
    if keys.signer is None:
        raise _refused("forms are disabled until the operator sets SESSION_SECRET")
    token = await _submitted_token(request)
    cookie_id = _cookie_id(request)
    if not token or cookie_id is None:
        raise _refused("missing CSRF token; reload the page and try again")
    try:
        signed_id = keys.signer.loads(token, max_age=CSRF_MAX_AGE, salt="csrf")
    except BadSignature:
        raise _refused("invalid or expired CSRF token; reload the page and try again") from None
    if not isinstance(signed_id, str) or not secrets.compare_digest(signed_id, cookie_id):
        raise _refused("CSRF token does not match this browser; reload the page and try again")
