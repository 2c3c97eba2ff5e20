"""Payments (payment_splits) with their tip recipients: recording new ones, reading and listing them.

A new payment is one statement whatever the batch size: its row, and only if
the hash was new its recipients, its planned legs and its `created` event, so
a sale and a 100,000-entry import share the same code and the same guarantees.
Concurrent sales without a caller's transaction share that statement too
(group commit): one round trip and one commit for all of them.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from tipsplit.domain.models import LegPlan, TipData
from tipsplit.domain.records import LegRecord, PaymentRecord, TipRecipientRecord
from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency
from tipsplit.store.database import Connection, Database, Repository
from tipsplit.store.errors import StorageUnavailable
from tipsplit.store.events import scrub
from tipsplit.store.group_commit import GroupCommit
from tipsplit.store.legs import LEGS_ARRAY, leg_record

PAYMENT_COLUMNS = (
    "payment_hash, status, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount,"
    " tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display, tip_recipient,"
    " memo, invoice_satoshis, payment_request, created_at, expires_at, paid_at, processed_at,"
    " user_payment_hash, tip_payment_hash, error_message, claim_owner, claim_expires_at, settle_attempts,"
    " next_attempt_at, updated_at, pos_wallet_id"
)
# For a RETURNING clause on payment_splits: the payment's recipients in order, read in the same statement.
RECIPIENT_USERNAMES = (
    "ARRAY(SELECT t.username FROM payment_tip_recipients t"
    " WHERE t.payment_hash = payment_splits.payment_hash ORDER BY t.position) AS recipients"
)


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment to record: its split, its sealed key, its planned legs and where their money goes.

    `recipient_wallets` maps tip recipients' usernames to wallet ids already known; `wallet_currencies` says,
    by wallet id, what each destination wallet holds (a wallet it does not name is BTC). `source` names where
    an imported payment came from, for its `created` event.
    """

    payment_hash: str
    tip: TipData
    encrypted_key: str = field(repr=False)
    legs: Sequence[LegPlan]
    expires_at: datetime
    source: str | None = None
    recipient_wallets: Mapping[str, str] = field(default_factory=dict)
    wallet_currencies: Mapping[str, WalletCurrency] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse what must never be stored: a key in clear, legs that do not add up to the invoice."""
        if not self.encrypted_key.startswith("enc:"):
            raise ValueError("refusing to store an API key that is not encrypted")
        if sum(plan.amount for plan in self.legs) != self.tip.total_amount:
            raise ValueError(f"payment {self.payment_hash}: leg amounts do not add up to the invoice amount")

    def leg_wallet(self, plan: LegPlan) -> str | None:
        """The wallet a leg pays into, if known yet (a tip recipient's is otherwise resolved when settling)."""
        return plan.wallet_id or (self.recipient_wallets.get(plan.username) if plan.username else None)

    def created_event(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "totalAmount": self.tip.total_amount,
            "baseAmount": self.tip.base_amount,
            "tipAmount": self.tip.tip_amount,
            "tipRecipients": [r.username for r in self.tip.tip_recipients],
            "legs": [{"leg": p.leg, "amount": p.amount, "skipped": p.skipped} for p in self.legs],
            "expiresAt": self.expires_at,
        }
        if self.source is not None:
            data["source"] = self.source
        return scrub(data)


# The fields of a PaymentRecord that are columns of payment_splits (its recipients and legs are read apart).
ROW_FIELDS = frozenset(PaymentRecord.__dataclass_fields__) - {"tip_recipients", "legs"}


def payment_record(
    row: Mapping[str, Any], recipients: Iterable[Mapping[str, Any]] = (), legs: Iterable[LegRecord] = ()
) -> PaymentRecord:
    """A payment_splits row (with its recipients and legs, if read) as the domain's record."""
    fields = {key: row[key] for key in row.keys() if key in ROW_FIELDS}
    fields["status"] = PaymentStatus(row["status"])
    return PaymentRecord(
        **fields,
        tip_recipients=[TipRecipientRecord(r["position"], r["username"], r["share"]) for r in recipients],
        legs=list(legs),
    )


# For a SELECT on payment_splits `p`, lateral-joined as `r`: its recipients' positions, usernames and shares.
RECIPIENT_ARRAYS = (
    "SELECT array_agg(t.position ORDER BY t.position) AS positions,"
    " array_agg(t.username ORDER BY t.position) AS usernames,"
    " array_agg(t.share ORDER BY t.position) AS shares"
    " FROM payment_tip_recipients t WHERE t.payment_hash = p.payment_hash"
)


def payment_with_details(row: Mapping[str, Any]) -> PaymentRecord:
    """A row read with RECIPIENT_ARRAYS (and LEGS_ARRAY, when it has `legs`) as the payment's whole record."""
    recipients = [
        {"position": position, "username": username, "share": share}
        for position, username, share in zip(row["positions"] or [], row["usernames"] or [], row["shares"] or [],
                                             strict=True)
    ]
    legs = [leg_record(leg) for leg in row["legs"]] if "legs" in row.keys() else []
    return payment_record(row, recipients, legs)


async def load_payment(conn: Connection, payment_hash: str, *, with_legs: bool = False) -> PaymentRecord | None:
    """The payment, its recipients and, if asked, its legs in one statement (one round trip, one snapshot)."""
    legs = f", {LEGS_ARRAY}" if with_legs else ""
    row = await conn.fetchrow(
        f"""
        SELECT {PAYMENT_COLUMNS}, r.positions, r.usernames, r.shares{legs}
        FROM payment_splits p LEFT JOIN LATERAL ({RECIPIENT_ARRAYS}) r ON true
        WHERE p.payment_hash = $1
        """,
        payment_hash,
    )
    return payment_with_details(row) if row is not None else None


INSERT_PAYMENTS = """
    WITH payment AS (
        INSERT INTO payment_splits (
            payment_hash, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount,
            tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display,
            tip_recipient, status, memo, invoice_satoshis, payment_request, expires_at, created_at, pos_wallet_id)
        SELECT p.hash, p.wallet, p.key, p.username, p.total, p.base, p.tip, p.percent, p.currency,
               p.base_display, p.tip_display, p.recipient, $18, p.memo, p.total, p.request,
               p.expires, COALESCE(p.created, now()), p.pos
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                    $7::bigint[], $8::numeric[], $9::text[], $10::numeric[], $11::numeric[], $12::text[],
                    $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[])
             AS p(hash, wallet, key, username, total, base, tip, percent, currency, base_display,
                  tip_display, recipient, memo, request, expires, created, pos)
        ON CONFLICT (payment_hash) DO NOTHING
        RETURNING payment_hash
    ), recipients AS (
        INSERT INTO payment_tip_recipients (payment_hash, position, username, share)
        SELECT r.hash, r.position, r.username, r.share
        FROM unnest($19::text[], $20::int[], $21::text[], $22::numeric[]) AS r(hash, position, username, share)
        JOIN payment ON payment.payment_hash = r.hash
    ), legs AS (
        INSERT INTO payment_legs (payment_hash, leg, destination_username, destination_wallet_id,
                                  destination_currency, amount, share, memo, status, completed_at)
        SELECT l.hash, l.leg, l.username, l.wallet, l.currency, l.amount, l.share, l.memo, l.status,
               CASE WHEN l.status = $32 THEN now() END
        FROM unnest($23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::bigint[],
                    $29::numeric[], $30::text[], $31::text[])
             AS l(hash, leg, username, wallet, currency, amount, share, memo, status)
        JOIN payment ON payment.payment_hash = l.hash
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT e.hash, 'created', e.data FROM unnest($33::text[], $34::jsonb[]) AS e(hash, data)
        JOIN payment ON payment.payment_hash = e.hash
    )
    SELECT payment_hash FROM payment
"""


class Payments(Repository):
    """Recording and reading payments."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._inserts: GroupCommit[NewPayment, bool] = GroupCommit(
            self._insert_batch, key=lambda payment: payment.payment_hash, shared_failures=(StorageUnavailable,)
        )

    async def insert(self, payment: NewPayment, *, conn: Connection | None = None) -> bool:
        """Record a new payment with its recipients and planned legs; False if the hash was already there.

        Without the caller's connection, concurrent inserts share one statement and one commit; the same
        hash never shares a batch, so a later duplicate still sees the first's row and gets False.
        """
        payment.check()
        if conn is not None:
            return payment.payment_hash in await self._write([payment], conn)
        return await self._inserts.submit(payment)

    async def _insert_batch(self, payments: Sequence[NewPayment]) -> list[bool]:
        new = await self._write(payments)
        return [payment.payment_hash in new for payment in payments]

    async def insert_many(self, payments: Sequence[NewPayment], *, conn: Connection | None = None) -> set[str]:
        """Record new payments in one statement (atomic, one round trip); returns the hashes that were new.

        A hash already stored, or repeated in the batch, is recorded once: its first occurrence.
        """
        for item in payments:
            item.check()
        return await self._write(payments, conn)

    async def _write(self, payments: Sequence[NewPayment], conn: Connection | None = None) -> set[str]:
        """INSERT_PAYMENTS for payments already checked (each checked once, where it entered)."""
        first: dict[str, NewPayment] = {}
        for item in payments:
            first.setdefault(item.payment_hash, item)
        batch = list(first.values())
        if not batch:
            return set()
        tips = [item.tip for item in batch]
        recipients = [(item.payment_hash, i, r) for item in batch for i, r in enumerate(item.tip.tip_recipients, 1)]
        legs = [(item, plan, item.leg_wallet(plan)) for item in batch for plan in item.legs]
        async with self.db.connection(conn) as c:
            rows = await c.fetch(
                INSERT_PAYMENTS,
                [item.payment_hash for item in batch],
                [t.user_wallet_id for t in tips],
                [item.encrypted_key for item in batch],
                [t.username for t in tips],
                [t.total_amount for t in tips],
                [t.base_amount for t in tips],
                [t.tip_amount for t in tips],
                [t.tip_percent for t in tips],
                [t.display_currency for t in tips],
                [t.base_amount_display for t in tips],
                [t.tip_amount_display for t in tips],
                [t.tip_recipient for t in tips],
                [t.memo for t in tips],
                [t.payment_request for t in tips],
                [item.expires_at for item in batch],
                [t.created_at for t in tips],
                [t.pos_wallet_id for t in tips],
                PaymentStatus.PENDING.value,
                [h for h, _, _ in recipients],
                [i for _, i, _ in recipients],
                [r.username for _, _, r in recipients],
                [r.share for _, _, r in recipients],
                [item.payment_hash for item, _, _ in legs],
                [plan.leg for _, plan, _ in legs],
                [plan.username for _, plan, _ in legs],
                [wallet for _, _, wallet in legs],
                [item.wallet_currencies.get(wallet, WalletCurrency.BTC).value if wallet else WalletCurrency.BTC.value
                 for item, _, wallet in legs],
                [plan.amount for _, plan, _ in legs],
                [plan.share for _, plan, _ in legs],
                [plan.memo for _, plan, _ in legs],
                [LegStatus.SKIPPED.value if plan.skipped else LegStatus.PENDING.value for _, plan, _ in legs],
                LegStatus.SKIPPED.value,
                [item.payment_hash for item in batch],
                [item.created_event() for item in batch],
            )
        return {row["payment_hash"] for row in rows}

    async def get(
        self, payment_hash: str, *, with_legs: bool = True, conn: Connection | None = None
    ) -> PaymentRecord | None:
        """The payment with its recipients (and legs unless told otherwise), or None; one statement either way."""
        return await self.db.read(lambda c: load_payment(c, payment_hash, with_legs=with_legs), conn)

    async def page(
        self,
        status: PaymentStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        recipient: str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        conn: Connection | None = None,
    ) -> list[PaymentRecord]:
        """Payments newest first, filtered for the operator CLI and dashboard (recipients included, legs not)."""

        async def query(c: Connection) -> list[PaymentRecord]:
            rows = await c.fetch(
                f"""
                SELECT {PAYMENT_COLUMNS} FROM payment_splits p
                WHERE ($1::text IS NULL OR status = $1)
                  AND ($2::timestamptz IS NULL OR created_at >= $2)
                  AND ($3::timestamptz IS NULL OR created_at < $3)
                  AND ($4::text IS NULL OR EXISTS (
                        SELECT 1 FROM payment_tip_recipients r
                        WHERE r.payment_hash = p.payment_hash AND r.username = $4))
                ORDER BY created_at DESC, id DESC
                LIMIT $5 OFFSET $6
                """,
                status.value if status else None,
                since,
                until,
                recipient,
                limit,
                offset,
            )
            recipients = await c.fetch(
                "SELECT payment_hash, position, username, share FROM payment_tip_recipients"
                " WHERE payment_hash = ANY($1::text[]) ORDER BY payment_hash, position",
                [row["payment_hash"] for row in rows],
            )
            by_hash: dict[str, list[asyncpg.Record]] = {}
            for r in recipients:
                by_hash.setdefault(r["payment_hash"], []).append(r)
            return [payment_record(row, by_hash.get(row["payment_hash"], [])) for row in rows]

        return await self.db.read(query, conn)

    async def hashes_starting_with(self, prefix: str, limit: int = 2, *, conn: Connection | None = None) -> list[str]:
        """Stored payment hashes beginning with `prefix` (lower-case hex), at most `limit` of them.

        For an operator typing the start of a hash from a screen or a receipt.
        """
        rows = await self.db.read(
            lambda c: c.fetch(
                "SELECT payment_hash FROM payment_splits WHERE payment_hash LIKE $1 || '%'"
                " ORDER BY payment_hash LIMIT $2",
                prefix,
                limit,
            ),
            conn,
        )
        return [row["payment_hash"] for row in rows]

