"""PostgreSQL, the source of truth: payments, their legs, claims and the audit trail.

This is the only module that speaks SQL. Every write is one transaction;
every state change is a conditional UPDATE (never read-then-write) and writes
its payment_events row in the same transaction, so the audit trail and the
state can never disagree.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import structlog

from tipsplit.domain.models import LegPlan, TipData
from tipsplit.domain.records import (
    Archived,
    EventRecord,
    LegRecord,
    MetricSample,
    PaymentRecord,
    RecipientStats,
    TipRecipientRecord,
)
from tipsplit.domain.retry import RetryPolicy
from tipsplit.domain.states import (
    BASE_LEG,
    FINAL_LEG_STATUSES,
    LegStatus,
    PaymentStatus,
    WalletCurrency,
)
from tipsplit.store.changes import ChangeListener, changes_payment, changes_payments
from tipsplit.store.errors import PaymentStateError, StorageUnavailable
from tipsplit.store.schema import libpq_url

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Errors that mean "the server is not there (any more)", as opposed to a bad query.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)

PAYMENT_COLUMNS = (
    "payment_hash, status, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount,"
    " tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display, tip_recipient,"
    " memo, invoice_satoshis, payment_request, created_at, expires_at, paid_at, processed_at,"
    " user_payment_hash, tip_payment_hash, error_message, claim_owner, claim_expires_at, settle_attempts,"
    " next_attempt_at, updated_at, pos_wallet_id"
)
LEG_COLUMNS = (
    "payment_hash, leg, amount, status, destination_username, destination_wallet_id, share, memo,"
    " dest_payment_hash, dest_payment_request, attempts, last_error, next_attempt_at, created_at,"
    " updated_at, completed_at, invoice_generation, waiting_for, destination_currency"
)
LEG_ORDER = "(leg <> 'base'), NULLIF(substring(leg from 5), '')::int"
# The POS accounts a caller settles for: their wallet ids, and the one that stands for payments stored without one.
PosScope = tuple[list[str], str | None]
RELEASE_TARGETS = frozenset({PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED})
SECRET_MARKERS = ("apikey", "api_key", "secret", "password")
# For a RETURNING clause on payment_splits: the payment's recipients in order, read in the same statement.
RECIPIENT_USERNAMES = (
    "ARRAY(SELECT t.username FROM payment_tip_recipients t"
    " WHERE t.payment_hash = payment_splits.payment_hash ORDER BY t.position) AS recipients"
)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(str(v) for v in value)
    raise TypeError(f"cannot store {type(value).__name__} in an event")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def scrub(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Event and metric data minus anything that looks like a secret; the audit trail must never hold one."""
    clean: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if any(marker in key.lower().replace("-", "_") for marker in SECRET_MARKERS):
            continue
        clean[key] = scrub(value) if isinstance(value, Mapping) else value
    return clean


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    That query is a round trip on every release, and this store never leaves
    such state on a pooled connection: no advisory locks, cursors, LISTEN or
    SET. asyncpg still rolls back an open transaction before calling this.
    """


def _payment(row: Mapping[str, Any], recipients: Iterable[Mapping[str, Any]] = (), legs: Iterable[Mapping[str, Any]] = ()) -> PaymentRecord:
    fields = {key: row[key] for key in row.keys() if key in PaymentRecord.__dataclass_fields__}
    fields["status"] = PaymentStatus(row["status"])
    return PaymentRecord(
        **fields,
        tip_recipients=[TipRecipientRecord(r["position"], r["username"], r["share"]) for r in recipients],
        legs=[_leg(leg) for leg in legs],
    )


def _leg(row: Mapping[str, Any]) -> LegRecord:
    fields = {key: row[key] for key in row.keys() if key in LegRecord.__dataclass_fields__}
    fields["status"] = LegStatus(row["status"])
    fields["destination_currency"] = WalletCurrency(row["destination_currency"])
    return LegRecord(**fields)


@dataclass(frozen=True, slots=True)
class NewPayment:
    """One row of an `insert_payments` batch: what `insert_payment` takes, plus where it came from."""

    payment_hash: str
    tip: TipData
    encrypted_key: str = field(repr=False)
    legs: Sequence[LegPlan]
    expires_at: datetime
    source: str | None = None


class ColdStore:
    """An asyncpg pool and the payment repository on top of it.

    The pool is opened lazily and reopened on the next call after a failed
    start, so a service that started while PostgreSQL was down heals itself.
    A connection that failed mid-query is terminated rather than returned to
    the pool, so a dead socket is never handed out again.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        max_settle_attempts: int = 6,
        retry_base_seconds: float = 2.0,
    ) -> None:
        self._dsn = libpq_url(url)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        # Failed payments are scheduled by the same policy as failed legs (settings: leg_retry_base_seconds,
        # max_leg_attempts).
        self.retry = RetryPolicy(base_seconds=retry_base_seconds, attempts=max_settle_attempts)
        self._pool: asyncpg.Pool | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        # Told the hashes of payments whose state or trail a committed transition changed (store/changes.py).
        self.change_listener: ChangeListener | None = None

    @classmethod
    async def connect(cls, url: str, min_size: int = 2, max_size: int = 10, **options: Any) -> "ColdStore":
        """A store with its pool open; raises StorageUnavailable if PostgreSQL does not answer."""
        store = cls(url, min_size=min_size, max_size=max_size, **options)
        await store.open()
        return store

    async def open(self) -> None:
        """Open the pool now (otherwise the first call does)."""
        async with self._open_lock:
            if self._closed:
                raise StorageUnavailable("the PostgreSQL store is closed")
            if self._pool is not None:
                return
            try:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                    max_inactive_connection_lifetime=60.0,
                    init=_init_connection,
                    reset=_keep_session,
                )
            except UNAVAILABLE_ERRORS as exc:
                raise StorageUnavailable(f"PostgreSQL is unreachable: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the pool; the store cannot be used afterwards."""
        async with self._open_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        """Round-trip to PostgreSQL; raises StorageUnavailable when it does not answer."""
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        try:
            # No acquire timeout (asyncpg's would wrap every acquire in wait_for): a waiter is bounded anyway,
            # because each connection is released within command_timeout and each new one within connect_timeout.
            async with self._pool.acquire() as conn:
                try:
                    yield conn
                except UNAVAILABLE_ERRORS:
                    conn.terminate()
                    raise
        except UNAVAILABLE_ERRORS as exc:
            raise StorageUnavailable(f"PostgreSQL is unreachable: {type(exc).__name__}: {exc}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    async def _read(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run a read, retrying once on a fresh connection: a read is always safe to repeat."""
        try:
            async with self._connection() as conn:
                return await query(conn)
        except StorageUnavailable:
            async with self._connection() as conn:
                return await query(conn)

    @staticmethod
    async def _event(conn: asyncpg.Connection, payment_hash: str, event_type: str, data: Mapping[str, Any] | None) -> None:
        await conn.execute(
            "INSERT INTO payment_events (payment_hash, event_type, event_data) VALUES ($1, $2, $3)",
            payment_hash,
            event_type,
            scrub(data),
        )

    @staticmethod
    async def _events(
        conn: asyncpg.Connection, payment_hashes: Sequence[str], event_type: str, data: Mapping[str, Any]
    ) -> None:
        """The same event for many payments, in one statement."""
        if payment_hashes:
            await conn.execute(
                "INSERT INTO payment_events (payment_hash, event_type, event_data)"
                " SELECT h, $2, $3 FROM unnest($1::text[]) AS h",
                list(payment_hashes),
                event_type,
                scrub(data),
            )

    # -- payments -----------------------------------------------------------

    async def insert_payment(
        self,
        payment_hash: str,
        tip: TipData,
        encrypted_key: str,
        legs: Sequence[LegPlan],
        recipient_wallets: Mapping[str, str],
        expires_at: datetime,
        wallet_currencies: Mapping[str, WalletCurrency] | None = None,
    ) -> bool:
        """Record a new payment with its recipients and planned legs; False if the hash was already there.

        `wallet_currencies` says, by wallet id, what each destination wallet holds; a wallet it does not name is BTC.
        """
        if not encrypted_key.startswith("enc:"):
            raise ValueError("refusing to store an API key that is not encrypted")
        if sum(plan.amount for plan in legs) != tip.total_amount:
            raise ValueError("leg amounts do not add up to the invoice amount")
        leg_wallets = [plan.wallet_id or (plan.username and recipient_wallets.get(plan.username)) for plan in legs]
        currencies = wallet_currencies or {}
        # One statement (so one round trip, atomic without BEGIN/COMMIT): the payment row, then, only if it
        # was new, its recipients, legs and `created` event. Foreign keys are checked at the statement's end.
        async with self._connection() as conn:
            created = await conn.fetchval(
                """
                WITH payment AS (
                    INSERT INTO payment_splits (
                        payment_hash, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount,
                        tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display,
                        tip_recipient, status, memo, invoice_satoshis, payment_request, expires_at, created_at,
                        pos_wallet_id
                    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $5, $14, $15,
                              COALESCE($16, now()), $28)
                    ON CONFLICT (payment_hash) DO NOTHING
                    RETURNING payment_hash, created_at
                ), recipients AS (
                    INSERT INTO payment_tip_recipients (payment_hash, position, username, share)
                    SELECT p.payment_hash, r.* FROM payment p, unnest($17::int[], $18::text[], $19::numeric[]) AS r
                ), legs AS (
                    INSERT INTO payment_legs (payment_hash, leg, destination_username, destination_wallet_id,
                                              destination_currency, amount, share, memo, status, completed_at)
                    SELECT p.payment_hash, l.leg, l.username, l.wallet, l.currency, l.amount, l.share, l.memo,
                           l.status, CASE WHEN l.status = 'skipped' THEN now() END
                    FROM payment p,
                         unnest($20::text[], $21::text[], $22::text[], $23::bigint[], $24::numeric[], $25::text[],
                                $26::text[], $29::text[]) AS l(leg, username, wallet, amount, share, memo, status,
                                                              currency)
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT p.payment_hash, 'created', $27::jsonb FROM payment p
                )
                SELECT created_at FROM payment
                """,
                payment_hash,
                tip.user_wallet_id,
                encrypted_key,
                tip.username,
                tip.total_amount,
                tip.base_amount,
                tip.tip_amount,
                tip.tip_percent,
                tip.display_currency,
                tip.base_amount_display,
                tip.tip_amount_display,
                tip.tip_recipient,
                tip.memo,
                tip.payment_request,
                expires_at,
                tip.created_at,
                list(range(1, len(tip.tip_recipients) + 1)),
                [r.username for r in tip.tip_recipients],
                [r.share for r in tip.tip_recipients],
                [plan.leg for plan in legs],
                [plan.username for plan in legs],
                leg_wallets,
                [plan.amount for plan in legs],
                [plan.share for plan in legs],
                [plan.memo for plan in legs],
                [LegStatus.SKIPPED.value if plan.skipped else LegStatus.PENDING.value for plan in legs],
                scrub(
                    {
                        "totalAmount": tip.total_amount,
                        "baseAmount": tip.base_amount,
                        "tipAmount": tip.tip_amount,
                        "tipRecipients": [r.username for r in tip.tip_recipients],
                        "legs": [{"leg": plan.leg, "amount": plan.amount, "skipped": plan.skipped} for plan in legs],
                        "expiresAt": expires_at,
                    }
                ),
                tip.pos_wallet_id,
                [currencies.get(wallet, WalletCurrency.BTC).value if wallet else WalletCurrency.BTC.value
                 for wallet in leg_wallets],
            )
        if created is None:
            return False
        return True

    async def get_payment(self, payment_hash: str, *, with_legs: bool = True) -> PaymentRecord | None:
        """The payment with its recipients (and legs unless told otherwise), or None."""

        async def query(conn: asyncpg.Connection) -> PaymentRecord | None:
            if not with_legs:
                return await self._load_payment_row(conn, payment_hash)
            async with conn.transaction(readonly=True):
                return await self._load_payment(conn, payment_hash, with_legs=with_legs)

        return await self._read(query)

    @staticmethod
    async def _load_payment_row(conn: asyncpg.Connection, payment_hash: str) -> PaymentRecord | None:
        """The payment and its recipients in one statement (one round trip, one snapshot), without legs."""
        row = await conn.fetchrow(
            f"""
            SELECT {PAYMENT_COLUMNS}, r.positions, r.usernames, r.shares
            FROM payment_splits p
            LEFT JOIN LATERAL (
                SELECT array_agg(t.position ORDER BY t.position) AS positions,
                       array_agg(t.username ORDER BY t.position) AS usernames,
                       array_agg(t.share ORDER BY t.position) AS shares
                FROM payment_tip_recipients t WHERE t.payment_hash = p.payment_hash
            ) r ON true
            WHERE p.payment_hash = $1
            """,
            payment_hash,
        )
        if row is None:
            return None
        recipients = [
            {"position": position, "username": username, "share": share}
            for position, username, share in zip(row["positions"] or [], row["usernames"] or [], row["shares"] or [],
                                                 strict=True)
        ]
        return _payment(row, recipients)

    async def _load_payment(self, conn: asyncpg.Connection, payment_hash: str, *, with_legs: bool = True) -> PaymentRecord | None:
        row = await conn.fetchrow(f"SELECT {PAYMENT_COLUMNS} FROM payment_splits WHERE payment_hash = $1", payment_hash)
        if row is None:
            return None
        recipients = await conn.fetch(
            "SELECT position, username, share FROM payment_tip_recipients WHERE payment_hash = $1 ORDER BY position",
            payment_hash,
        )
        legs = await self._load_legs(conn, payment_hash) if with_legs else []
        return _payment(row, recipients, legs)

    @staticmethod
    async def _load_legs(conn: asyncpg.Connection, payment_hash: str) -> list[asyncpg.Record]:
        return await conn.fetch(
            f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = $1 ORDER BY {LEG_ORDER}", payment_hash
        )

    async def list_payments(
        self,
        status: PaymentStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        recipient: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[PaymentRecord]:
        """Payments newest first, filtered for the operator CLI and dashboard (recipients included, legs not)."""

        async def query(conn: asyncpg.Connection) -> list[PaymentRecord]:
            rows = await conn.fetch(
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
            recipients = await conn.fetch(
                "SELECT payment_hash, position, username, share FROM payment_tip_recipients"
                " WHERE payment_hash = ANY($1::text[]) ORDER BY payment_hash, position",
                [row["payment_hash"] for row in rows],
            )
            by_hash: dict[str, list[asyncpg.Record]] = {}
            for r in recipients:
                by_hash.setdefault(r["payment_hash"], []).append(r)
            return [_payment(row, by_hash.get(row["payment_hash"], [])) for row in rows]

        return await self._read(query)

    # -- claims -------------------------------------------------------------

    @changes_payment()
    async def claim(
        self, payment_hash: str, owner: str, lease_seconds: float, *, allow_failed: bool = False,
        details: bool = True,
    ) -> PaymentRecord | None:
        """Take the payment for settlement, or None if someone else holds it or it is finished.

        Claimable: pending, expired, processing with a lapsed lease, and failed
        when `allow_failed`. One statement locks the row (concurrent claimers
        queue on it), applies the conditional UPDATE that lets exactly one of
        them through (re-checked on the newest row version), and writes the
        `claimed` event. With `details` the recipients and legs are read back in
        the same transaction; without, the record has neither (one round trip).
        """
        statement = f"""
            WITH before AS (
                SELECT status, claim_owner FROM payment_splits WHERE payment_hash = $1 FOR UPDATE
            ), claimed AS (
                UPDATE payment_splits
                SET status = 'processing', claim_owner = $2,
                    claim_expires_at = now() + make_interval(secs => $3::float8),
                    settle_attempts = settle_attempts + 1, next_attempt_at = NULL, updated_at = now()
                FROM before
                WHERE payment_hash = $1
                  AND (payment_splits.status IN ('pending', 'expired')
                       OR (payment_splits.status = 'processing' AND claim_expires_at < now())
                       OR ($4::bool AND payment_splits.status = 'failed'))
                RETURNING {", ".join("payment_splits." + c.strip() for c in PAYMENT_COLUMNS.split(","))},
                          before.status AS previous_status, before.claim_owner AS previous_owner
            ), event AS (
                INSERT INTO payment_events (payment_hash, event_type, event_data)
                SELECT payment_hash, 'claimed', jsonb_build_object(
                    'owner', $2::text, 'previousStatus', previous_status, 'previousOwner', previous_owner,
                    'attempt', settle_attempts)
                FROM claimed
            )
            SELECT * FROM claimed
        """
        arguments = (payment_hash, owner, float(lease_seconds), allow_failed)
        if not details:
            async with self._connection() as conn:
                row = await conn.fetchrow(statement, *arguments)
            return _payment(row) if row is not None else None
        async with self._transaction() as conn:
            row = await conn.fetchrow(statement, *arguments)
            if row is None:
                return None
            recipients = await conn.fetch(
                "SELECT position, username, share FROM payment_tip_recipients WHERE payment_hash = $1 ORDER BY position",
                payment_hash,
            )
            return _payment(row, recipients, await self._load_legs(conn, payment_hash))

    async def renew_claim(self, payment_hash: str, owner: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the claim was lost (then stop working on the payment)."""
        async with self._connection() as conn:
            result = await conn.execute(
                """
                UPDATE payment_splits
                SET claim_expires_at = now() + make_interval(secs => $3::float8), updated_at = now()
                WHERE payment_hash = $1 AND claim_owner = $2 AND status = 'processing'
                """,
                payment_hash,
                owner,
                float(lease_seconds),
            )
        return result.endswith(" 1")

    @changes_payment()
    async def release_claim(
        self,
        payment_hash: str,
        owner: str,
        status: PaymentStatus,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Give the payment back (e.g. not paid yet → pending, invoice expired → expired)."""
        status = PaymentStatus(status)
        if status not in RELEASE_TARGETS:
            raise ValueError(f"a claim cannot be released to {status.value!r}")
        async with self._transaction() as conn:
            result = await conn.execute(
                """
                UPDATE payment_splits
                SET status = $3, claim_owner = NULL, claim_expires_at = NULL, next_attempt_at = $4, updated_at = now()
                WHERE payment_hash = $1 AND claim_owner = $2 AND status = 'processing'
                """,
                payment_hash,
                owner,
                status.value,
                next_attempt_at,
            )
            if not result.endswith(" 1"):
                return False
            await self._event(conn, payment_hash, event_type, {"owner": owner, "status": status.value, **scrub(data)})
        return True

    async def expire(self, payment_hash: str, owner: str) -> bool:
        """Mark a claimed payment whose invoice expired unpaid."""
        return await self.release_claim(payment_hash, owner, PaymentStatus.EXPIRED, "expired", {})

    @changes_payment()
    async def mark_paid(self, payment_hash: str, owner: str) -> bool:
        """Record that Blink says the POS invoice is paid; True only the first time."""
        async with self._transaction() as conn:
            paid_at = await conn.fetchval(
                """
                UPDATE payment_splits SET paid_at = now(), updated_at = now()
                WHERE payment_hash = $1 AND claim_owner = $2 AND status = 'processing' AND paid_at IS NULL
                RETURNING paid_at
                """,
                payment_hash,
                owner,
            )
            if paid_at is None:
                return False
            await self._event(conn, payment_hash, "paid", {"owner": owner})
        return True

    @changes_payment()
    async def complete(self, payment_hash: str, owner: str, result: Mapping[str, Any]) -> Archived | None:
        """Archive a settled payment: status, result hashes, event and recipient stats in one transaction.

        Refuses (PaymentStateError) while any leg is neither succeeded nor
        skipped: a payment is never called completed with money still owed.
        None when `owner` does not hold the claim (nothing changed).
        """
        async with self._transaction() as conn:
            claimed = await conn.fetchval(
                "SELECT 1 FROM payment_splits WHERE payment_hash = $1 AND status = 'processing' AND claim_owner = $2"
                " FOR UPDATE",
                payment_hash,
                owner,
            )
            if claimed is None:
                return None
            legs = [_leg(row) for row in await self._load_legs(conn, payment_hash)]
            open_legs = [leg.leg for leg in legs if leg.status not in FINAL_LEG_STATUSES]
            if open_legs:
                raise PaymentStateError(
                    f"payment {payment_hash} cannot be completed: legs {', '.join(open_legs)} are not settled"
                )
            base = next((leg for leg in legs if leg.leg == BASE_LEG), None)
            tips = [leg for leg in legs if leg.leg != BASE_LEG]
            first_tip_hash = next((leg.dest_payment_hash for leg in tips if leg.dest_payment_hash), None)
            recipients = await conn.fetchval(
                f"""
                UPDATE payment_splits
                SET status = 'completed', processed_at = now(), updated_at = now(), claim_owner = NULL,
                    claim_expires_at = NULL, next_attempt_at = NULL, error_message = NULL,
                    user_payment_hash = $3, tip_payment_hash = $4
                WHERE payment_hash = $1 AND status = 'processing' AND claim_owner = $2
                RETURNING {RECIPIENT_USERNAMES}
                """,
                payment_hash,
                owner,
                base.dest_payment_hash if base else None,
                first_tip_hash,
            )
            paid_tips = sorted(
                (leg for leg in tips if leg.status == LegStatus.SUCCEEDED and leg.amount > 0 and leg.destination_username),
                key=lambda leg: leg.destination_username or "",
            )
            if paid_tips:
                await conn.execute(
                    """
                    INSERT INTO tip_recipients_stats AS s (recipient_username, total_tips_received, total_tips_count,
                        average_tip_amount, first_tip_received_at, last_tip_received_at)
                    SELECT t.username, t.amount, 1, t.amount, now(), now()
                    FROM unnest($1::text[], $2::bigint[]) AS t(username, amount)
                    ON CONFLICT (recipient_username) DO UPDATE SET
                        total_tips_received = s.total_tips_received + EXCLUDED.total_tips_received,
                        total_tips_count = s.total_tips_count + 1,
                        average_tip_amount = round(
                            (s.total_tips_received + EXCLUDED.total_tips_received)::numeric / (s.total_tips_count + 1), 2),
                        first_tip_received_at = COALESCE(s.first_tip_received_at, now()),
                        last_tip_received_at = now(),
                        updated_at = now()
                    """,
                    [leg.destination_username for leg in paid_tips],
                    [leg.amount for leg in paid_tips],
                )
            await self._event(
                conn,
                payment_hash,
                "completed",
                {
                    "owner": owner,
                    "userPaymentHash": base.dest_payment_hash if base else None,
                    "tipPaymentHash": first_tip_hash,
                    "legs": [{"leg": leg.leg, "status": leg.status.value, "amount": leg.amount} for leg in legs],
                    "result": dict(result),
                },
            )
        return Archived(tuple(recipients))

    @changes_payment()
    async def fail(self, payment_hash: str, owner: str, error: str) -> Archived | None:
        """Mark a claimed payment failed, which is final: nothing takes it up again on its own.

        The reconciler resumes only lapsed claims (`stale_claims`); a failed
        payment is settled again only by an operator's retry. `next_attempt_at`
        is when it is due for one by the shared retry policy (`self.retry`,
        indexed by `settle_attempts`), NULL once its attempts are used up; the
        dashboard counts those due (`retryable_failed`). None when `owner`
        does not hold the claim (nothing changed).
        """
        # One statement: the conditional UPDATE and, only if it matched, the `failed` event and the recipients.
        return await self._archived(
            f"""
            WITH failed AS (
                UPDATE payment_splits
                SET status = 'failed', error_message = $3, processed_at = now(), updated_at = now(),
                    claim_owner = NULL, claim_expires_at = NULL,
                    next_attempt_at = now() + make_interval(secs => ($4::float8[])[settle_attempts])
                WHERE payment_hash = $1 AND claim_owner = $2 AND status = 'processing'
                RETURNING payment_hash, settle_attempts, next_attempt_at, {RECIPIENT_USERNAMES}
            ), event AS (
                INSERT INTO payment_events (payment_hash, event_type, event_data)
                SELECT payment_hash, 'failed', jsonb_build_object(
                    'owner', $2::text, 'error', $3::text, 'attempts', settle_attempts,
                    'nextAttemptAt', next_attempt_at)
                FROM failed
            )
            SELECT recipients FROM failed
            """,
            payment_hash,
            owner,
            error,
            self.retry.schedule(),
        )

    @changes_payment()
    async def fail_unclaimed(self, payment_hash: str, owner: str, error: str) -> Archived | None:
        """Fail a payment nobody holds, in one statement: what `claim` then `fail` do, in one round trip.

        Takes the same payments `claim(allow_failed=True)` would (pending,
        expired, failed, or processing with a lapsed lease), counts the attempt
        and schedules the retry as `fail` does, and writes one `failed` event
        naming the previous status and owner. None when the payment is held by
        a live claim, finished, or not stored (nothing changed).
        """
        return await self._archived(
            f"""
            WITH before AS (
                SELECT status, claim_owner FROM payment_splits WHERE payment_hash = $1 FOR UPDATE
            ), failed AS (
                UPDATE payment_splits
                SET status = 'failed', error_message = $3, processed_at = now(), updated_at = now(),
                    claim_owner = NULL, claim_expires_at = NULL, settle_attempts = settle_attempts + 1,
                    next_attempt_at = now() + make_interval(secs => ($4::float8[])[settle_attempts + 1])
                FROM before
                WHERE payment_hash = $1
                  AND (payment_splits.status IN ('pending', 'expired', 'failed')
                       OR (payment_splits.status = 'processing' AND claim_expires_at < now()))
                RETURNING payment_hash, settle_attempts, next_attempt_at, before.status AS previous_status,
                          before.claim_owner AS previous_owner, {RECIPIENT_USERNAMES}
            ), event AS (
                INSERT INTO payment_events (payment_hash, event_type, event_data)
                SELECT payment_hash, 'failed', jsonb_build_object(
                    'owner', $2::text, 'error', $3::text, 'attempts', settle_attempts,
                    'nextAttemptAt', next_attempt_at, 'previousStatus', previous_status,
                    'previousOwner', previous_owner)
                FROM failed
            )
            SELECT recipients FROM failed
            """,
            payment_hash,
            owner,
            error,
            self.retry.schedule(),
        )

    async def _archived(self, statement: str, *arguments: Any) -> Archived | None:
        """Run one archiving statement; the tip recipients of the payment it changed, or None if none."""
        async with self._connection() as conn:
            row = await conn.fetchrow(statement, *arguments)
        return Archived(tuple(row["recipients"])) if row is not None else None

    # -- legs ---------------------------------------------------------------

    async def legs(self, payment_hash: str) -> list[LegRecord]:
        """The payment's legs in order (base, tip:1, …)."""
        return [_leg(row) for row in await self._read(lambda conn: self._load_legs(conn, payment_hash))]

    async def set_leg_wallet(self, payment_hash: str, leg: str, wallet_id: str, currency: WalletCurrency) -> bool:
        """Remember the wallet (and what it holds) a tip recipient's username resolved to, before its invoice exists."""
        async with self._transaction() as conn:
            result = await conn.execute(
                """
                UPDATE payment_legs SET destination_wallet_id = $3, destination_currency = $4, updated_at = now()
                WHERE payment_hash = $1 AND leg = $2 AND status IN ('pending', 'failed') AND dest_payment_hash IS NULL
                """,
                payment_hash,
                leg,
                wallet_id,
                currency.value,
            )
            if not result.endswith(" 1"):
                return False
            await self._event(
                conn, payment_hash, "leg_wallet_resolved", {"leg": leg, "walletId": wallet_id, "currency": currency.value}
            )
        return True

    @changes_payment()
    async def set_leg_invoice(self, payment_hash: str, leg: str, dest_hash: str, dest_request: str) -> LegRecord:
        """Store the destination invoice once, before paying it.

        If the leg already has an invoice the row is returned unchanged and the
        caller must pay *that* invoice: paying it twice is impossible, paying a
        second one would pay twice.
        """
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                f"""
                UPDATE payment_legs
                SET status = 'invoiced', dest_payment_hash = $3, dest_payment_request = $4, waiting_for = NULL,
                    next_attempt_at = NULL, updated_at = now()
                WHERE payment_hash = $1 AND leg = $2 AND status = 'pending' AND dest_payment_hash IS NULL
                RETURNING {LEG_COLUMNS}
                """,
                payment_hash,
                leg,
                dest_hash.lower(),
                dest_request,
            )
            if row is not None:
                await self._event(conn, payment_hash, "leg_invoiced", {"leg": leg, "destPaymentHash": dest_hash.lower()})
                return _leg(row)
            current = await conn.fetchrow(
                f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = $1 AND leg = $2", payment_hash, leg
            )
        if current is None:
            raise LookupError(f"payment {payment_hash} has no leg {leg!r}")
        return _leg(current)

    @changes_payment()
    async def reset_leg_invoice(self, payment_hash: str, leg: str, from_statuses: set[LegStatus]) -> bool:
        """Forget a destination invoice that expired unpaid, so a fresh one (the next generation) can be made.

        The caller has made sure no send to it is pending or succeeded; the old hash is kept in the event.
        """
        async with self._transaction() as conn:
            old_hash = await conn.fetchval(
                """
                SELECT dest_payment_hash FROM payment_legs
                WHERE payment_hash = $1 AND leg = $2 AND status = ANY($3::text[]) FOR UPDATE
                """,
                payment_hash,
                leg,
                [LegStatus(s).value for s in from_statuses],
            )
            if old_hash is None:
                return False
            await conn.execute(
                """
                UPDATE payment_legs
                SET status = 'failed', dest_payment_hash = NULL, dest_payment_request = NULL,
                    invoice_generation = invoice_generation + 1,
                    last_error = 'destination invoice expired unpaid', updated_at = now()
                WHERE payment_hash = $1 AND leg = $2
                """,
                payment_hash,
                leg,
            )
            await self._event(conn, payment_hash, "leg_invoice_expired", {"leg": leg, "expiredPaymentHash": old_hash})
        return True

    @changes_payment()
    async def skip_invoice_generation(self, payment_hash: str, leg: str, generation: int, external_id: str) -> bool:
        """Move a leg with no stored invoice past a generation whose invoice exists on Blink but was never stored.

        That invoice was created by an attempt that crashed or lost Blink's answer;
        its hash was never recorded, so nothing can pay it and it expires unpaid.
        """
        async with self._transaction() as conn:
            result = await conn.execute(
                """
                UPDATE payment_legs SET invoice_generation = invoice_generation + 1, updated_at = now()
                WHERE payment_hash = $1 AND leg = $2 AND invoice_generation = $3 AND dest_payment_hash IS NULL
                """,
                payment_hash,
                leg,
                generation,
            )
            if not result.endswith(" 1"):
                return False
            await self._event(
                conn, payment_hash, "leg_invoice_unrecorded", {"leg": leg, "externalId": external_id}
            )
        return True

    @changes_payment()
    async def wait_leg(self, payment_hash: str, leg: str, until: datetime, reason: str) -> bool:
        """Hold a leg that has no invoice yet until `until`: not an attempt, not a failure, just not now.

        The first wait for a reason is written to the trail; the looks after it only move the time.
        """
        async with self._transaction() as conn:
            previous = await conn.fetchrow(
                """
                WITH target AS (
                    SELECT id, waiting_for FROM payment_legs
                    WHERE payment_hash = $1 AND leg = $2 AND status = 'pending' AND dest_payment_hash IS NULL
                    FOR UPDATE
                )
                UPDATE payment_legs l SET next_attempt_at = $3, waiting_for = $4, updated_at = now()
                FROM target WHERE l.id = target.id
                RETURNING target.waiting_for
                """,
                payment_hash,
                leg,
                until,
                reason,
            )
            if previous is None:
                return False
            if previous["waiting_for"] != reason:
                await self._event(conn, payment_hash, "leg_waiting", {"leg": leg, "for": reason, "until": until})
        return True

    @changes_payment()
    async def transition_leg(
        self,
        payment_hash: str,
        leg: str,
        from_statuses: set[LegStatus],
        to: LegStatus,
        *,
        error: str | None = None,
        count_attempt: bool = False,
        next_attempt_at: datetime | None = None,
        event_type: str | None = None,
        event_data: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move a leg from one of `from_statuses` to `to`; False (and nothing written) if it was elsewhere."""
        to = LegStatus(to)
        async with self._transaction() as conn:
            previous = await conn.fetchval(
                """
                WITH target AS (
                    SELECT id, status FROM payment_legs
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($3::text[]) FOR UPDATE
                )
                UPDATE payment_legs l
                SET status = $4::text, last_error = COALESCE($5::text, l.last_error), attempts = l.attempts + $6::int,
                    next_attempt_at = $7, updated_at = now(),
                    completed_at = CASE WHEN $4::text IN ('succeeded', 'skipped') THEN now() ELSE l.completed_at END
                FROM target WHERE l.id = target.id
                RETURNING target.status
                """,
                payment_hash,
                leg,
                [LegStatus(s).value for s in from_statuses],
                to.value,
                error,
                int(count_attempt),
                next_attempt_at,
            )
            if previous is None:
                return False
            data = {"leg": leg, "from": previous, "to": to.value}
            if error is not None:
                data["error"] = error
            await self._event(conn, payment_hash, event_type or f"leg_{to.value}", {**data, **scrub(event_data)})
        return True

    # -- events -------------------------------------------------------------

    @changes_payment(always=True)
    async def add_event(self, payment_hash: str, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Append to a payment's audit trail (secrets are dropped)."""
        async with self._connection() as conn:
            await self._event(conn, payment_hash, event_type, data)

    async def events(self, payment_hash: str) -> list[EventRecord]:
        """A payment's audit trail, oldest first."""
        rows = await self._read(
            lambda conn: conn.fetch(
                'SELECT id, payment_hash, event_type, event_data, "timestamp" FROM payment_events'
                " WHERE payment_hash = $1 ORDER BY id",
                payment_hash,
            )
        )
        return [EventRecord(r["id"], r["payment_hash"], r["event_type"], r["event_data"], r["timestamp"]) for r in rows]

    # -- work queues for the poller and reconciler ---------------------------

    async def pending_payments(
        self, limit: int = 100, after: str | None = None, accounts: PosScope | None = None
    ) -> list[str]:
        """Hashes of pending payments in hash order after `after`, so a poller can page through all of them.

        With `accounts`, only the payments received by those POS accounts: each is settled from its own account.
        """
        wallets, default = accounts or (None, None)
        rows = await self._read(
            lambda conn: conn.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = 'pending' AND payment_hash > $2"
                " AND ($3::text[] IS NULL OR COALESCE(pos_wallet_id, $4) = ANY($3::text[]))"
                " ORDER BY payment_hash LIMIT $1",
                limit,
                after or "",
                wallets,
                default,
            )
        )
        return [r["payment_hash"] for r in rows]

    async def stale_claims(self, limit: int = 100, accounts: PosScope | None = None) -> list[str]:
        """Hashes of payments whose settler stopped renewing its lease (crashed, stuck, or waiting to look again)."""
        wallets, default = accounts or (None, None)
        rows = await self._read(
            lambda conn: conn.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = 'processing' AND claim_expires_at < now()"
                " AND ($2::text[] IS NULL OR COALESCE(pos_wallet_id, $3) = ANY($2::text[]))"
                " ORDER BY claim_expires_at LIMIT $1",
                limit,
                wallets,
                default,
            )
        )
        return [r["payment_hash"] for r in rows]

    async def retryable_failed(self, now: datetime, limit: int = 100) -> list[str]:
        """Hashes of failed payments due for another attempt."""
        rows = await self._read(
            lambda conn: conn.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = 'failed' AND next_attempt_at <= $1"
                " AND settle_attempts < $2 ORDER BY next_attempt_at LIMIT $3",
                now,
                self.retry.attempts,
                limit,
            )
        )
        return [r["payment_hash"] for r in rows]

    # -- statistics and metrics ---------------------------------------------

    async def stats_24h(self) -> dict[str, Any]:
        """The seed's last-24-hours numbers: counts by status, tips processed, average tip, volume."""
        row = await self._read(
            lambda conn: conn.fetchrow(
                """
                SELECT count(*) FILTER (WHERE status = 'pending') AS pending_count,
                       count(*) FILTER (WHERE status = 'processing') AS processing_count,
                       count(*) FILTER (WHERE status = 'completed') AS completed_count,
                       count(*) FILTER (WHERE status = 'failed') AS failed_count,
                       count(*) FILTER (WHERE status = 'expired') AS expired_count,
                       COALESCE(sum(tip_amount) FILTER (WHERE status = 'completed'), 0) AS total_tips_processed,
                       round(avg(tip_amount) FILTER (WHERE status = 'completed'), 2) AS average_tip_amount,
                       COALESCE(sum(total_amount) FILTER (WHERE status = 'completed'), 0) AS total_volume
                FROM payment_splits WHERE created_at > now() - interval '24 hours'
                """
            )
        )
        stats: dict[str, Any] = {key: int(row[key]) for key in row.keys() if key != "average_tip_amount"}
        average = row["average_tip_amount"]
        stats["average_tip_amount"] = float(average) if average is not None else 0.0
        return stats

    async def recipient_stats(self, limit: int = 50) -> list[RecipientStats]:
        """Recipients by total tips received, largest first."""
        rows = await self._read(
            lambda conn: conn.fetch(
                """
                SELECT recipient_username, total_tips_received, total_tips_count, average_tip_amount,
                       first_tip_received_at, last_tip_received_at
                FROM tip_recipients_stats ORDER BY total_tips_received DESC, recipient_username LIMIT $1
                """,
                limit,
            )
        )
        return [RecipientStats(**dict(r)) for r in rows]

    async def stats_for_recipient(self, username: str) -> RecipientStats | None:
        """One recipient's lifetime totals, or None if they were never tipped."""
        row = await self._read(
            lambda conn: conn.fetchrow(
                """
                SELECT recipient_username, total_tips_received, total_tips_count, average_tip_amount,
                       first_tip_received_at, last_tip_received_at
                FROM tip_recipients_stats WHERE recipient_username = $1
                """,
                username,
            )
        )
        return RecipientStats(**dict(row)) if row is not None else None

    async def insert_metrics(self, samples: Sequence[MetricSample]) -> int:
        """Write a batch of metric rows in one statement (one round trip, one transaction)."""
        if not samples:
            return 0
        async with self._connection() as conn:
            await conn.execute(
                """
                INSERT INTO system_metrics (metric_name, metric_value, metric_unit, metadata, "timestamp")
                SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::jsonb[], $5::timestamptz[])
                """,
                [s.name for s in samples],
                [Decimal(str(s.value)) for s in samples],
                [s.unit for s in samples],
                [scrub(s.metadata) if s.metadata else None for s in samples],
                [s.recorded_at for s in samples],
            )
        return len(samples)

    # -- reports for the operations dashboard --------------------------------

    async def legs_of(self, payment_hashes: Sequence[str]) -> dict[str, list[LegRecord]]:
        """The legs of many payments in one query, so an export is not one query per payment."""
        rows = await self._read(
            lambda conn: conn.fetch(
                f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = ANY($1::text[])"
                f" ORDER BY payment_hash, {LEG_ORDER}",
                list(payment_hashes),
            )
        )
        legs: dict[str, list[LegRecord]] = {}
        for row in rows:
            legs.setdefault(row["payment_hash"], []).append(_leg(row))
        return legs

    async def volume_series(self, since: datetime, bucket: str) -> list[tuple[datetime, int, int, int]]:
        """Completed volume and tips per `hour` or `day` since a moment: (bucket start, volume, tips, count)."""
        if bucket not in ("hour", "day"):
            raise ValueError("bucket must be 'hour' or 'day'")
        rows = await self._read(
            lambda conn: conn.fetch(
                """
                SELECT date_trunc($2, created_at) AS bucket, COALESCE(sum(total_amount), 0) AS volume,
                       COALESCE(sum(tip_amount), 0) AS tips, count(*) AS payments
                FROM payment_splits WHERE status = 'completed' AND created_at >= $1
                GROUP BY 1 ORDER BY 1
                """,
                since,
                bucket,
            )
        )
        return [(r["bucket"], int(r["volume"]), int(r["tips"]), int(r["payments"])) for r in rows]

    async def metric_totals(self, names: Sequence[str], since: datetime) -> dict[str, float]:
        """The sum of each named system metric since a moment (e.g. cache hits and misses)."""
        rows = await self._read(
            lambda conn: conn.fetch(
                'SELECT metric_name, COALESCE(sum(metric_value), 0) AS total FROM system_metrics'
                ' WHERE metric_name = ANY($1::text[]) AND "timestamp" >= $2 GROUP BY metric_name',
                list(names),
                since,
            )
        )
        totals = {name: 0.0 for name in names}
        totals.update({r["metric_name"]: float(r["total"]) for r in rows})
        return totals

    # -- operator commands: migration, key rotation, manual retry -----------------

    async def insert_payments(self, payments: Sequence[NewPayment]) -> set[str]:
        """Record many new payments in one transaction (the migration's batches); returns the hashes that were new.

        Same rows as `insert_payment`, one statement per table instead of one per
        payment, so a 100,000-entry import is bounded by PostgreSQL, not round trips.
        """
        for item in payments:
            if not item.encrypted_key.startswith("enc:"):
                raise ValueError("refusing to store an API key that is not encrypted")
            if sum(plan.amount for plan in item.legs) != item.tip.total_amount:
                raise ValueError(f"payment {item.payment_hash}: leg amounts do not add up to the invoice amount")
        if not payments:
            return set()
        tips = [item.tip for item in payments]
        async with self._transaction() as conn:
            rows = await conn.fetch(
                """
                INSERT INTO payment_splits (
                    payment_hash, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount,
                    tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display,
                    tip_recipient, status, memo, invoice_satoshis, payment_request, expires_at, created_at)
                SELECT p.hash, p.wallet, p.key, p.username, p.total, p.base, p.tip, p.percent, p.currency,
                       p.base_display, p.tip_display, p.recipient, 'pending', p.memo, p.total, p.request,
                       p.expires, COALESCE(p.created, now())
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                            $7::bigint[], $8::numeric[], $9::text[], $10::numeric[], $11::numeric[], $12::text[],
                            $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[])
                     AS p(hash, wallet, key, username, total, base, tip, percent, currency, base_display,
                          tip_display, recipient, memo, request, expires, created)
                ON CONFLICT (payment_hash) DO NOTHING
                RETURNING payment_hash
                """,
                [item.payment_hash for item in payments],
                [t.user_wallet_id for t in tips],
                [item.encrypted_key for item in payments],
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
                [item.expires_at for item in payments],
                [t.created_at for t in tips],
            )
            new = {row["payment_hash"] for row in rows}
            fresh = [item for item in payments if item.payment_hash in new]
            recipients = [(item.payment_hash, i, r) for item in fresh for i, r in enumerate(item.tip.tip_recipients, 1)]
            if recipients:
                await conn.execute(
                    """
                    INSERT INTO payment_tip_recipients (payment_hash, position, username, share)
                    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::numeric[])
                    """,
                    [h for h, _, _ in recipients],
                    [i for _, i, _ in recipients],
                    [r.username for _, _, r in recipients],
                    [r.share for _, _, r in recipients],
                )
            legs = [(item, plan) for item in fresh for plan in item.legs]
            if legs:
                await conn.execute(
                    """
                    INSERT INTO payment_legs (payment_hash, leg, destination_username, destination_wallet_id,
                                              amount, share, memo, status, completed_at)
                    SELECT l.hash, l.leg, l.username, l.wallet, l.amount, l.share, l.memo, l.status,
                           CASE WHEN l.status = 'skipped' THEN now() END
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::numeric[],
                                $7::text[], $8::text[]) AS l(hash, leg, username, wallet, amount, share, memo, status)
                    """,
                    [item.payment_hash for item, _ in legs],
                    [plan.leg for _, plan in legs],
                    [plan.username for _, plan in legs],
                    [plan.wallet_id for _, plan in legs],
                    [plan.amount for _, plan in legs],
                    [plan.share for _, plan in legs],
                    [plan.memo for _, plan in legs],
                    [LegStatus.SKIPPED.value if plan.skipped else LegStatus.PENDING.value for _, plan in legs],
                )
            if fresh:
                await conn.execute(
                    "INSERT INTO payment_events (payment_hash, event_type, event_data)"
                    " SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])",
                    [item.payment_hash for item in fresh],
                    ["created"] * len(fresh),
                    [
                        scrub({
                            "totalAmount": item.tip.total_amount,
                            "baseAmount": item.tip.base_amount,
                            "tipAmount": item.tip.tip_amount,
                            "tipRecipients": [r.username for r in item.tip.tip_recipients],
                            "legs": [{"leg": p.leg, "amount": p.amount, "skipped": p.skipped} for p in item.legs],
                            "expiresAt": item.expires_at,
                            "source": item.source,
                        })
                        for item in fresh
                    ],
                )
        return new

    @changes_payments
    async def archive_expired(self, payment_hashes: Sequence[str], event_type: str, data: Mapping[str, Any]) -> list[str]:
        """Pending payments whose invoice expired → expired, never pending again; returns those it moved.

        Conditional on `pending` and a past expiry, so a payment a settler has
        claimed meanwhile is left to it.
        """
        async with self._transaction() as conn:
            rows = await conn.fetch(
                """
                UPDATE payment_splits SET status = 'expired', updated_at = now()
                WHERE payment_hash = ANY($1::text[]) AND status = 'pending' AND expires_at <= now()
                RETURNING payment_hash
                """,
                list(payment_hashes),
            )
            moved = [row["payment_hash"] for row in rows]
            await self._events(conn, moved, event_type, data)
        return moved

    async def api_keys_not_under(self, key_id: str, *, after: str = "", limit: int = 500) -> list[tuple[str, str]]:
        """(payment hash, sealed key) of payments whose key is not sealed under `key_id`, in hash order after `after`."""
        rows = await self._read(
            lambda conn: conn.fetch(
                """
                SELECT payment_hash, user_api_key_encrypted FROM payment_splits
                WHERE NOT starts_with(user_api_key_encrypted, 'enc:v1:' || $1 || ':') AND payment_hash > $2
                ORDER BY payment_hash LIMIT $3
                """,
                key_id,
                after,
                limit,
            )
        )
        return [(row["payment_hash"], row["user_api_key_encrypted"]) for row in rows]

    @changes_payments
    async def replace_api_keys(self, changes: Sequence[tuple[str, str, str]], key_id: str) -> list[str]:
        """Swap (hash, old token, new token) where the stored token is still the old one; returns the hashes changed."""
        if any(not new.startswith("enc:") for _, _, new in changes):
            raise ValueError("refusing to store an API key that is not encrypted")
        async with self._transaction() as conn:
            rows = await conn.fetch(
                """
                UPDATE payment_splits p SET user_api_key_encrypted = c.new, updated_at = now()
                FROM unnest($1::text[], $2::text[], $3::text[]) AS c(hash, old, new)
                WHERE p.payment_hash = c.hash AND p.user_api_key_encrypted = c.old
                RETURNING p.payment_hash
                """,
                [h for h, _, _ in changes],
                [old for _, old, _ in changes],
                [new for _, _, new in changes],
            )
            changed = [row["payment_hash"] for row in rows]
            await self._events(conn, changed, "api_key_rotated", {"keyId": key_id})
        return changed

    @changes_payment()
    async def reset_failed_legs(self, payment_hash: str, reason: str) -> list[str]:
        """Give a failed payment's failed legs fresh attempts, due now; returns the legs reset.

        Only while the payment is `failed`; the legs keep their destination
        invoice, so the settler resumes by asking Blink about it (never a second payment).
        """
        async with self._transaction() as conn:
            rows = await conn.fetch(
                """
                UPDATE payment_legs l SET attempts = 0, next_attempt_at = NULL, updated_at = now()
                FROM payment_splits p
                WHERE l.payment_hash = $1 AND p.payment_hash = l.payment_hash
                  AND p.status = 'failed' AND l.status = 'failed'
                RETURNING l.leg
                """,
                payment_hash,
            )
            legs = [row["leg"] for row in rows]
            if legs:
                await self._event(conn, payment_hash, "legs_reset", {"legs": legs, "reason": reason})
        return legs
