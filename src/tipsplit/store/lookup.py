"""Finding a payment by the start of its hash, as an operator types it from a screen or a receipt."""

from tipsplit.store.cold import ColdStore


async def hashes_starting_with(cold: ColdStore, prefix: str, limit: int = 2) -> list[str]:
    """Stored payment hashes beginning with `prefix` (lower-case hex), at most `limit` of them."""
    rows = await cold._read(
        lambda conn: conn.fetch(
            "SELECT payment_hash FROM payment_splits WHERE payment_hash LIKE $1 || '%' ORDER BY payment_hash LIMIT $2",
            prefix, limit,
        )
    )
    return [row["payment_hash"] for row in rows]
