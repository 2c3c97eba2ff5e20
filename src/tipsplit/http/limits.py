"""Invoice rate limits that only a wallet's owner can use up.

Every request counts against the caller's IP first. A wallet's own bucket counts only requests whose API key
Blink confirmed owns that wallet, so a wrong key or someone else's wallet id costs the caller's IP, never the
merchant: nobody can lock a till out of selling by sending requests in its name.
"""

from fastapi import HTTPException

from tipsplit.http.errors import error_body
from tipsplit.runtime.assembly import Runtime


class RateLimited(HTTPException):
    """429 with Retry-After: the caller's IP or the wallet has used up its requests for the window."""

    def __init__(self, retry_after: int, message: str = "too many invoices; slow down") -> None:
        super().__init__(
            status_code=429,
            detail=error_body(message, retryAfter=retry_after),
            headers={"Retry-After": str(retry_after)},
        )


async def admit_invoice(rt: Runtime, *, api_key: str, wallet_id: str, ip: str) -> None:
    """Count the request against the IP, prove the key owns the wallet, then count it against the wallet.

    Raises RateLimited, or the InvoiceRequestError (401/403) of a key that does not own the wallet.
    With Redis down the limits are not enforced (they live there); the ownership check still is.
    """
    by_ip = await rt.store.check_rate_limit(ip=ip)
    if not by_ip.allowed:
        raise RateLimited(by_ip.retry_after)
    await rt.invoices.check_merchant(api_key, wallet_id)
    by_wallet = await rt.store.check_rate_limit(wallet_id=wallet_id)
    if not by_wallet.allowed:
        raise RateLimited(by_wallet.retry_after)
