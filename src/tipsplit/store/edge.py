"""What the HTTP edge keeps in Redis: per-client request counters and operator sessions, failing open when Redis is down.

A counter Redis cannot take allows the request (the PostgreSQL guards still
hold); a session Redis cannot keep is refused, so nobody is signed in on a
store that cannot remember it.
"""

from functools import partial
from typing import Literal

from tipsplit.settings import Settings
from tipsplit.store.hot import HotStore, RateLimitResult, if_up

UNCOUNTED = RateLimitResult(True, -1, 0)


class EdgeCounters:
    """Invoice, settle-now and sign-in counters per client, and operator sessions, in the hot store."""

    def __init__(self, hot: HotStore | None, settings: Settings) -> None:
        self._hot = hot
        self._settings = settings

    async def check_rate_limit(self, *, wallet_id: str | None = None, ip: str | None = None) -> RateLimitResult:
        """Count one invoice request per wallet and per IP; allowed when Redis is down (fail open)."""
        window = self._settings.rate_limit_window_seconds
        checks: list[tuple[Literal["user", "ip"], str | None, int]] = [
            ("user", wallet_id, self._settings.rate_limit_per_wallet),
            ("ip", ip, self._settings.rate_limit_per_ip),
        ]
        counted: list[RateLimitResult] = []
        for scope, identity, limit in checks:
            if not identity:
                continue
            count_hit = partial(HotStore.hit_rate_limit, scope=scope, identity=identity, limit=limit, window_seconds=window)
            result = await if_up(self._hot, count_hit)
            if result is None:
                continue
            if not result.allowed:
                return result
            counted.append(result)
        return min(counted, key=lambda r: r.remaining, default=UNCOUNTED)

    async def check_forward_rate_limit(self, ip: str) -> RateLimitResult:
        """Count one settle-now request (forward-with-tips) per client IP; allowed when Redis is down (fail open)."""
        count_hit = partial(
            HotStore.hit_rate_limit, scope="ip", identity=ip, limit=self._settings.forward_rate_limit_per_ip,
            window_seconds=self._settings.forward_rate_limit_window_seconds, action="forward",
        )
        return await if_up(self._hot, count_hit) or UNCOUNTED

    async def check_login_limit(self, ip: str, limit: int, window_seconds: int) -> RateLimitResult:
        """Count one operator sign-in attempt of a client IP; allowed when Redis is down (fail open)."""
        count_hit = partial(
            HotStore.hit_rate_limit, scope="ip", identity=ip, limit=limit, window_seconds=window_seconds,
            action="operator-login",
        )
        return await if_up(self._hot, count_hit) or UNCOUNTED

    async def put_operator_session(self, session_key: str, fingerprint: str, ttl_seconds: int) -> bool:
        """Keep an operator session in Redis; False when Redis is off or down (no session can be kept)."""
        return bool(await if_up(self._hot, lambda hot: hot.put_operator_session(session_key, fingerprint, ttl_seconds)))

    async def get_operator_session(self, session_key: str) -> str | None:
        return await if_up(self._hot, lambda hot: hot.get_operator_session(session_key))

    async def delete_operator_session(self, session_key: str) -> None:
        await if_up(self._hot, lambda hot: hot.delete_operator_session(session_key))
