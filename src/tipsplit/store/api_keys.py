"""The sealed Blink API keys of payments, for `tipsplit keys rotate`: which are not under the current key, re-sealing."""

from collections.abc import Sequence

from tipsplit.store.changes import changes_payments
from tipsplit.store.database import Connection, Repository
from tipsplit.store.events import scrub


class ApiKeys(Repository):
    """Finding and replacing the sealed keys of payments; the key in clear never reaches PostgreSQL."""

    async def not_under(
        self, key_id: str, *, after: str = "", limit: int = 500, conn: Connection | None = None
    ) -> list[tuple[str, str]]:
        """(payment hash, sealed key) of payments whose key is not sealed under `key_id`, in hash order after `after`."""
        rows = await self.db.read(
            lambda c: c.fetch(
                """
                SELECT payment_hash, user_api_key_encrypted FROM payment_splits
                WHERE NOT starts_with(user_api_key_encrypted, 'enc:v1:' || $1 || ':') AND payment_hash > $2
                ORDER BY payment_hash LIMIT $3
                """,
                key_id,
                after,
                limit,
            ),
            conn,
        )
        return [(row["payment_hash"], row["user_api_key_encrypted"]) for row in rows]

    @changes_payments
    async def replace(
        self, changes: Sequence[tuple[str, str, str]], key_id: str, *, conn: Connection | None = None
    ) -> list[str]:
        """Swap (hash, old token, new token) where the stored token is still the old one; returns the hashes changed."""
        if any(not new.startswith("enc:") for _, _, new in changes):
            raise ValueError("refusing to store an API key that is not encrypted")
        async with self.db.connection(conn) as c:
            rows = await c.fetch(
                """
                WITH rotated AS (
                    UPDATE payment_splits p SET user_api_key_encrypted = k.new, updated_at = now()
                    FROM unnest($1::text[], $2::text[], $3::text[]) AS k(hash, old, new)
                    WHERE p.payment_hash = k.hash AND p.user_api_key_encrypted = k.old
                    RETURNING p.payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, 'api_key_rotated', $4::jsonb FROM rotated
                )
                SELECT payment_hash FROM rotated
                """,
                [h for h, _, _ in changes],
                [old for _, old, _ in changes],
                [new for _, _, new in changes],
                scrub({"keyId": key_id}),
            )
        return [row["payment_hash"] for row in rows]
