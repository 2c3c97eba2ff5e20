"""Request-scoped access to the runtime built at start-up."""

from fastapi import Request

from tipsplit.runtime.assembly import Runtime


async def runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request."""
    return request.app.state.runtime  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The caller's IP: the connection's peer, or what a TRUSTED_PROXIES proxy said in X-Forwarded-For."""
    return request.client.host if request.client else "unknown"
