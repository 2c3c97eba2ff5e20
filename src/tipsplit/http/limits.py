"""Request limits: invoice limits that only a wallet's owner can use up, and forward requests per IP.

Every request counts against the caller's IP first. A wallet's own bucket counts only requests whose API key
Blink confirmed owns that wallet, so a wrong key or someone else's wallet id costs the caller's IP, never the
merchant: nobody can lock a till out of selling by sending requests in its name.
"""

from dataclasses import dataclass

from fastapi import HTTPException, Request

from tipsplit.http.errors import error_body
from tipsplit.services.invoicing import InvoiceService
from tipsplit.store.stack import StoreStack


def client_ip(request: Request) -> str:
    """The caller's IP: the connection's peer, or what a TRUSTED_PROXIES proxy said in X-Forwarded-For."""
    return request.client.host if request.client else "unknown"


class RateLimited(HTTPException):
    """429 with Retry-After: the caller's IP or the wallet has used up its requests for the window."""

    def __init__(self, retry_after: int, message: str = "too many invoices; slow down") -> None:
        super().__init__(
            status_code=429,
            detail=error_body(message, retryAfter=retry_after),
            headers={"Retry-After": str(retry_after)},
        )


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The request buckets (kept in Redis) and the owner check that decides whose bucket a request costs."""

    store: StoreStack
    invoices: InvoiceService

    async def admit_invoice(self, *, api_key: str, wallet_id: str, ip: str) -> None:
        """Count the request against the IP, prove the key owns the wallet, then count it against the wallet.

        Raises RateLimited, or the InvoiceRequestError (401/403) of a key that does not own the wallet.
        With Redis down the limits are not enforced (they live there); the ownership check still is.
        """
        by_ip = await self.store.edge.check_rate_limit(ip=ip)
        if not by_ip.allowed:
            raise RateLimited(by_ip.retry_after)
        await self.invoices.check_merchant(api_key, wallet_id)
        by_wallet = await self.store.edge.check_rate_limit(wallet_id=wallet_id)
        if not by_wallet.allowed:
            raise RateLimited(by_wallet.retry_after)

    async def admit_forward(self, ip: str) -> None:
        """`forward-with-tips` needs no credentials, so only the caller's IP is counted."""
        decision = await self.store.edge.check_forward_rate_limit(ip)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "too many forward requests; slow down")
