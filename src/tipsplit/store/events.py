"""A payment's audit trail (payment_events): append-only, and never holding a secret."""

from collections.abc import Mapping, Sequence
from typing import Any

from tipsplit.domain.records import EventRecord
from tipsplit.store.changes import changes_payment
from tipsplit.store.database import Connection, Repository

SECRET_MARKERS = ("apikey", "api_key", "secret", "password")


def scrub(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Event and metric data minus anything that looks like a secret; the audit trail must never hold one."""
    clean: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if any(marker in key.lower().replace("-", "_") for marker in SECRET_MARKERS):
            continue
        clean[key] = scrub(value) if isinstance(value, Mapping) else value
    return clean


async def write_event(conn: Connection, payment_hash: str, event_type: str, data: Mapping[str, Any] | None) -> None:
    """Append one event on the caller's connection (inside the transaction of the change it records)."""
    await conn.execute(
        "INSERT INTO payment_events (payment_hash, event_type, event_data) VALUES ($1, $2, $3)",
        payment_hash,
        event_type,
        scrub(data),
    )


async def write_events(conn: Connection, payment_hashes: Sequence[str], event_type: str, data: Mapping[str, Any]) -> None:
    """The same event for many payments, in one statement."""
    if payment_hashes:
        await conn.execute(
            "INSERT INTO payment_events (payment_hash, event_type, event_data)"
            " SELECT h, $2, $3 FROM unnest($1::text[]) AS h",
            list(payment_hashes),
            event_type,
            scrub(data),
        )


class Events(Repository):
    """Appending to and reading a payment's audit trail."""

    @changes_payment(always=True)
    async def add(
        self, payment_hash: str, event_type: str, data: Mapping[str, Any] | None = None, *, conn: Connection | None = None
    ) -> None:
        """Append to a payment's audit trail (secrets are dropped)."""
        async with self.db.connection(conn) as c:
            await write_event(c, payment_hash, event_type, data)

    async def of_payment(self, payment_hash: str, *, conn: Connection | None = None) -> list[EventRecord]:
        """A payment's audit trail, oldest first."""
        rows = await self.db.read(
            lambda c: c.fetch(
                'SELECT id, payment_hash, event_type, event_data, "timestamp" FROM payment_events'
                " WHERE payment_hash = $1 ORDER BY id",
                payment_hash,
            ),
            conn,
        )
        return [EventRecord(r["id"], r["payment_hash"], r["event_type"], r["event_data"], r["timestamp"]) for r in rows]
