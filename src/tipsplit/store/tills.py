"""PostgreSQL for tills: the owner's device links, their set-up, and which till rang up which sale.

A till's link token is never stored, only its SHA-256, so a copy of the database opens no till. The
merchant's key is stored sealed, like every other key. Statements go through the payment store's `Database`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from tipsplit.domain.states import PaymentStatus
from tipsplit.store.database import Connection, Repository

TILL_COLUMNS = (
    "id, name, api_key_encrypted, merchant_username, wallet_id, display_currency, tip_presets, team,"
    " created_at, revoked_at"
)


@dataclass(frozen=True)
class TeamMember:
    """A tip recipient of a till's team: a Blink username and a share of each tip in percent."""

    username: str
    share: Decimal


@dataclass(frozen=True)
class Till:
    """A till as the server knows it; the device only ever holds the link token."""

    id: int
    name: str
    api_key_encrypted: str = field(repr=False)
    merchant_username: str | None
    wallet_id: str
    display_currency: str
    tip_presets: tuple[Decimal, ...]
    team: tuple[TeamMember, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class FlaggedSale:
    """A sale its cashier cancelled that the customer paid anyway (it is forwarded like any other)."""

    payment_hash: str
    till_name: str
    status: str
    total_amount: int
    cancelled_at: datetime
    paid_at: datetime | None


def _till(row: asyncpg.Record) -> Till:
    team = tuple(TeamMember(m["username"], Decimal(str(m["share"]))) for m in row["team"])
    return Till(
        row["id"], row["name"], row["api_key_encrypted"], row["merchant_username"], row["wallet_id"],
        row["display_currency"], tuple(row["tip_presets"]), team, row["created_at"], row["revoked_at"],
    )


def _team_json(team: Sequence[TeamMember]) -> list[dict[str, Any]]:
    return [{"username": m.username, "share": str(m.share)} for m in team]


class TillStore(Repository):
    """Tills and till sales, on the payment store's PostgreSQL pool."""

    async def create(
        self, *, name: str, token_hash: str, api_key_encrypted: str, merchant_username: str | None,
        wallet_id: str, display_currency: str, tip_presets: Sequence[Decimal], team: Sequence[TeamMember],
        conn: Connection | None = None,
    ) -> Till:
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(
                f"INSERT INTO tills (name, token_hash, api_key_encrypted, merchant_username, wallet_id,"
                f" display_currency, tip_presets, team) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                f" RETURNING {TILL_COLUMNS}",
                name, token_hash, api_key_encrypted, merchant_username, wallet_id, display_currency,
                list(tip_presets), _team_json(team),
            )
        return _till(row)

    async def by_token_hash(self, token_hash: str, *, conn: Connection | None = None) -> Till | None:
        """The till a link token opens (revoked ones included, so the device can be told why it is refused)."""
        row = await self.db.read(
            lambda c: c.fetchrow(f"SELECT {TILL_COLUMNS} FROM tills WHERE token_hash = $1", token_hash), conn
        )
        return _till(row) if row else None

    async def all(self, *, conn: Connection | None = None) -> list[Till]:
        """Every till, active first, newest first."""
        rows = await self.db.read(
            lambda c: c.fetch(f"SELECT {TILL_COLUMNS} FROM tills ORDER BY revoked_at IS NOT NULL, id DESC"), conn
        )
        return [_till(row) for row in rows]

    async def revoke(self, till_id: int, *, conn: Connection | None = None) -> bool:
        """Close a till for good: its link opens nothing from now on. False if unknown or already revoked."""
        async with self.db.connection(conn) as c:
            done = await c.fetchval(
                "UPDATE tills SET revoked_at = now(), updated_at = now() WHERE id = $1 AND revoked_at IS NULL"
                " RETURNING id", till_id,
            )
        return done is not None

    async def update_setup(
        self, till_id: int, *, display_currency: str, tip_presets: Sequence[Decimal], team: Sequence[TeamMember],
        conn: Connection | None = None,
    ) -> bool:
        """The owner changes who is on shift, their shares, presets or currency; the next sale uses them."""
        async with self.db.connection(conn) as c:
            done = await c.fetchval(
                "UPDATE tills SET display_currency = $2, tip_presets = $3, team = $4, updated_at = now()"
                " WHERE id = $1 AND revoked_at IS NULL RETURNING id",
                till_id, display_currency, list(tip_presets), _team_json(team),
            )
        return done is not None

    async def sealed_keys(self, *, conn: Connection | None = None) -> list[tuple[int, str]]:
        """Every till's id and sealed key, for `tipsplit keys rotate`."""
        rows = await self.db.read(lambda c: c.fetch("SELECT id, api_key_encrypted FROM tills ORDER BY id"), conn)
        return [(row["id"], row["api_key_encrypted"]) for row in rows]

    async def replace_key(self, till_id: int, old: str, new: str, *, conn: Connection | None = None) -> bool:
        """Re-seal one till's key, unless it changed meanwhile."""
        async with self.db.connection(conn) as c:
            done = await c.fetchval(
                "UPDATE tills SET api_key_encrypted = $3 WHERE id = $1 AND api_key_encrypted = $2 RETURNING id",
                till_id, old, new,
            )
        return done is not None

    async def record_sale(self, till_id: int, payment_hash: str, *, conn: Connection | None = None) -> None:
        """Remember which till rang up a sale, with its audit event, in one statement."""
        async with self.db.connection(conn) as c:
            await c.execute(
                "WITH sale AS (INSERT INTO till_sales (payment_hash, till_id) VALUES ($1, $2) RETURNING payment_hash)"
                " INSERT INTO payment_events (payment_hash, event_type, event_data)"
                " SELECT payment_hash, 'till_sale', $3::jsonb FROM sale",
                payment_hash, till_id, {"till": till_id},
            )
        await self.announce([payment_hash], conn)

    async def sale_till(self, payment_hash: str, *, conn: Connection | None = None) -> str | None:
        """The name of the till that rang up a sale, or None for a sale made another way."""
        return await self.db.read(  # type: ignore[no-any-return]
            lambda c: c.fetchval(
                "SELECT t.name FROM till_sales s JOIN tills t ON t.id = s.till_id WHERE s.payment_hash = $1",
                payment_hash,
            ),
            conn,
        )

    async def cancel_sale(self, till_id: int, payment_hash: str, *, conn: Connection | None = None) -> bool:
        """Mark a still-unpaid sale of this till cancelled (with an audit event). False for any other sale."""
        async with self.db.connection(conn) as c:
            done = await c.fetchval(
                "WITH cancelled AS (UPDATE till_sales s SET cancelled_at = now() FROM payment_splits p"
                " WHERE s.payment_hash = $1 AND s.till_id = $2 AND s.cancelled_at IS NULL"
                " AND p.payment_hash = s.payment_hash AND p.status = $4 RETURNING s.payment_hash),"
                " event AS (INSERT INTO payment_events (payment_hash, event_type, event_data)"
                " SELECT payment_hash, 'sale_cancelled', $3::jsonb FROM cancelled)"
                " SELECT payment_hash FROM cancelled",
                payment_hash, till_id, {"till": till_id}, PaymentStatus.PENDING.value,
            )
        if done is None:
            return False
        await self.announce([payment_hash], conn)
        return True

    async def cancelled_unpaid_24h(self, *, conn: Connection | None = None) -> int:
        """Cancelled sales still awaiting payment, created in the last 24 h: not 'in progress' for the owner."""
        return await self.db.read(  # type: ignore[no-any-return]
            lambda c: c.fetchval(
                "SELECT count(*) FROM till_sales s JOIN payment_splits p ON p.payment_hash = s.payment_hash"
                " WHERE s.cancelled_at IS NOT NULL AND p.status = $1"
                " AND p.created_at > now() - interval '24 hours'",
                PaymentStatus.PENDING.value,
            ),
            conn,
        )

    async def paid_after_cancel(self, limit: int = 50, *, conn: Connection | None = None) -> list[FlaggedSale]:
        """Cancelled sales that were paid anyway, newest first, for the dashboard to flag."""
        rows = await self.db.read(
            lambda c: c.fetch(
                "SELECT s.payment_hash, t.name, p.status, p.total_amount, s.cancelled_at, p.paid_at"
                " FROM till_sales s JOIN tills t ON t.id = s.till_id JOIN payment_splits p"
                " ON p.payment_hash = s.payment_hash WHERE s.cancelled_at IS NOT NULL"
                " AND p.status <> ALL($2::text[]) ORDER BY s.cancelled_at DESC LIMIT $1",
                limit, [PaymentStatus.PENDING.value, PaymentStatus.EXPIRED.value],
            ),
            conn,
        )
        return [FlaggedSale(r["payment_hash"], r["name"], r["status"], r["total_amount"], r["cancelled_at"],
                            r["paid_at"]) for r in rows]
