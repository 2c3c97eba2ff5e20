"""Creating a payment: PostgreSQL first, then its Redis cache entry; the fsynced journal while PostgreSQL is down.

Also the seed's camelCase view of a payment, which the Redis cache, the
journal and the seed's API (store/hybrid.py) all hold.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from pydantic import ValidationError

from tipsplit.domain.models import TipData, check_payment_hash, plan_legs
from tipsplit.domain.records import PaymentRecord
from tipsplit.domain.states import PaymentStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.store.errors import (
    InvalidPaymentHash,
    InvalidTipData,
    PaymentConflict,
    StorageUnavailable,
)
from tipsplit.store.hot import HotStore, if_up
from tipsplit.store.journal import Journal
from tipsplit.store.payments import NewPayment
from tipsplit.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

ACTIVE_STATUSES = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING})
JOURNAL_STORE = "store_tip_data"


def number(value: Decimal | None) -> int | float | None:
    """Decimals as the seed's JSON numbers: 15 stays 15, 10.50 becomes 10.5."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def tip_view(payment_hash: str, tip: TipData, *, api_key: str, status: PaymentStatus) -> dict[str, Any]:
    """The seed's camelCase shape of a payment; the same builder serves Redis, PostgreSQL and the journal."""
    assert tip.created_at is not None and tip.expires_at is not None
    view = {
        "paymentHash": payment_hash,
        "baseAmount": tip.base_amount,
        "tipAmount": tip.tip_amount,
        "totalAmount": tip.total_amount,
        "tipPercent": number(tip.tip_percent),
        "tipRecipient": tip.tip_recipient,
        "tipRecipients": [{"username": r.username, "share": number(r.share)} for r in tip.tip_recipients],
        "userApiKey": api_key,
        "userWalletId": tip.user_wallet_id,
        "username": tip.username,
        "displayCurrency": tip.display_currency,
        "baseAmountDisplay": number(tip.base_amount_display),
        "tipAmountDisplay": number(tip.tip_amount_display),
        "memo": tip.memo,
        "paymentRequest": tip.payment_request,
        "posWalletId": tip.pos_wallet_id,
        "status": status.value,
        "createdAt": _millis(tip.created_at),
        "expiresAt": _millis(tip.expires_at),
    }
    return {key: value for key, value in view.items() if value is not None}


def tip_from_record(payment: PaymentRecord) -> TipData:
    """The typed tip data of a stored payment (the API key left encrypted)."""
    return TipData.model_validate(
        {
            "baseAmount": payment.base_amount,
            "tipAmount": payment.tip_amount,
            "tipPercent": payment.tip_percent,
            "tipRecipients": [{"username": r.username, "share": r.share} for r in payment.tip_recipients],
            "userApiKey": payment.user_api_key_encrypted,
            "userWalletId": payment.user_wallet_id,
            "username": payment.username,
            "displayCurrency": payment.display_currency,
            "baseAmountDisplay": payment.base_amount_display,
            "tipAmountDisplay": payment.tip_amount_display,
            "memo": payment.memo,
            "paymentRequest": payment.payment_request,
            "posWalletId": payment.pos_wallet_id,
            "createdAt": payment.created_at,
            "expiresAt": payment.expires_at,
        }
    )


def check_hash(payment_hash: str) -> str:
    """A payment hash as stored (64 lowercase hex characters), or InvalidPaymentHash."""
    try:
        return check_payment_hash(payment_hash)
    except ValueError as exc:
        raise InvalidPaymentHash(str(exc)) from None


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def view_of(payment: PaymentRecord) -> dict[str, Any]:
    """A stored payment in the seed's shape, its API key still sealed (what the Redis cache holds)."""
    return tip_view(
        payment.payment_hash, tip_from_record(payment), api_key=payment.user_api_key_encrypted, status=payment.status
    )


async def cache_view(hot: HotStore | None, payment_hash: str, view: Mapping[str, Any]) -> None:
    """Warm a payment's Redis cache entry, kept until the invoice expires; skipped when Redis is off or down."""
    expires_at = datetime.fromtimestamp(view["expiresAt"] / 1000, UTC)
    await if_up(hot, lambda h: h.store_tip(payment_hash, view, expires_at))


class PaymentIntake:
    """Creating a payment: PostgreSQL first, then its Redis cache entry; the fsynced journal while PostgreSQL is down.

    The one way a new split is stored, by the invoicing service and by the
    seed's `store_tip_data` alike. With a journal (FALLBACK_TO_FILE_STORAGE),
    a write PostgreSQL cannot take is acknowledged once journaled and replayed
    (idempotently) when PostgreSQL answers again.
    """

    def __init__(
        self, pg: PostgresStore, hot: HotStore | None, keyring: KeyRing, journal: Journal | None, max_memo_length: int
    ) -> None:
        self._pg = pg
        self._hot = hot
        self._keyring = keyring
        self.journal = journal
        self._max_memo_length = max_memo_length
        self._replay_lock = asyncio.Lock()
        self.before_replay: Callable[[], Awaitable[None]] = pg.open

    async def create(
        self,
        payment_hash: str,
        tip: TipData,
        *,
        recipient_wallets: Mapping[str, str] | None = None,
        wallet_currencies: Mapping[str, WalletCurrency] | None = None,
    ) -> bool:
        """Store a new split (with its creation and expiry times set); returns once it is durable.

        True when this call stored it; False when the same split was already
        stored under this hash (a repeat). Another split under the hash raises
        PaymentConflict. A caller making a *new* sale must treat False as a conflict too.
        """
        payment_hash = check_hash(payment_hash)
        if tip.created_at is None or tip.expires_at is None:
            raise InvalidTipData("invalid tip data: a new payment needs its creation and expiry times")
        if tip.memo is not None and len(tip.memo) > self._max_memo_length:
            raise InvalidTipData(f"invalid tip data: memo is longer than {self._max_memo_length} characters")
        api_key = tip.user_api_key.get_secret_value()
        encrypted = self._keyring.encrypt(api_key)
        wallets = dict(recipient_wallets or {})
        currencies = dict(wallet_currencies or {})
        try:
            inserted = await self._pg.payments.insert(
                NewPayment(payment_hash, tip, encrypted, plan_legs(tip), tip.expires_at, None, wallets, currencies)
            )
        except StorageUnavailable as exc:
            if self.journal is None:
                raise StorageUnavailable(
                    f"payment {payment_hash} was not stored: PostgreSQL is unreachable and"
                    " FALLBACK_TO_FILE_STORAGE is off"
                ) from exc
            await self._journal_store(payment_hash, tip, encrypted, wallets, currencies)
            await cache_view(self._hot, payment_hash, tip_view(payment_hash, tip, api_key=encrypted, status=PaymentStatus.PENDING))
            return True
        if not inserted:
            existing = await self._pg.payments.get(payment_hash, with_legs=False)
            if existing is None:
                raise StorageUnavailable(f"payment {payment_hash} vanished while being stored")
            self._check_same(existing, tip, api_key)
            if existing.status in ACTIVE_STATUSES:
                await cache_view(self._hot, payment_hash, view_of(existing))
            return False
        await cache_view(self._hot, payment_hash, tip_view(payment_hash, tip, api_key=encrypted, status=PaymentStatus.PENDING))
        return True

    async def replay_journal(self) -> int:
        """Move journaled writes into PostgreSQL; safe to repeat (inserts are idempotent)."""
        if self.journal is None:
            return 0
        async with self._replay_lock:
            await self.before_replay()
            applied = await self.journal.replay(self._apply_journal_record)
        if applied:
            log.info("store.journal_replayed", records=applied)
        return applied

    async def replay_forever(self, interval: float) -> None:
        """Replay the journal whenever it holds records and PostgreSQL answers."""
        assert self.journal is not None
        while True:
            try:
                if await asyncio.to_thread(len, self.journal):
                    await self.replay_journal()
            except StorageUnavailable:
                pass
            except Exception:
                log.exception("store.journal_replay_failed")
            await asyncio.sleep(interval)

    async def _journal_store(
        self,
        payment_hash: str,
        tip: TipData,
        encrypted: str,
        wallets: dict[str, str],
        currencies: dict[str, WalletCurrency],
    ) -> None:
        assert self.journal is not None and tip.created_at is not None and tip.expires_at is not None
        await self.journal.append(
            {
                "op": JOURNAL_STORE,
                "paymentHash": payment_hash,
                "tip": tip_view(payment_hash, tip, api_key=encrypted, status=PaymentStatus.PENDING),
                "createdAt": tip.created_at.isoformat(),
                "expiresAt": tip.expires_at.isoformat(),
                "recipientWallets": wallets,
                "walletCurrencies": {wallet: currency.value for wallet, currency in currencies.items()},
            }
        )
        log.warning("store.journaled", payment_hash=payment_hash, reason="postgresql unavailable")

    async def _apply_journal_record(self, record: dict[str, Any]) -> None:
        if record.get("op") != JOURNAL_STORE:
            raise ValueError(f"unknown journal record type {record.get('op')!r}")
        payment_hash = record["paymentHash"]
        encrypted = record["tip"]["userApiKey"]
        tip = TipData.model_validate(
            {
                **record["tip"],
                "userApiKey": self._keyring.decrypt(encrypted),
                "createdAt": record["createdAt"],
                "expiresAt": record["expiresAt"],
            }
        )
        assert tip.expires_at is not None
        currencies = {wallet: WalletCurrency(c) for wallet, c in (record.get("walletCurrencies") or {}).items()}
        await self._pg.payments.insert(
            NewPayment(
                payment_hash, tip, encrypted, plan_legs(tip), tip.expires_at, None,
                record.get("recipientWallets") or {}, currencies,
            )
        )

    def _check_same(self, existing: PaymentRecord, tip: TipData, api_key: str) -> None:
        """A repeated store is fine; the same hash with other amounts or destinations is not."""
        stored = [(r.username, r.share) for r in existing.tip_recipients]
        given = [(r.username, r.share) for r in tip.tip_recipients]
        same = (
            existing.base_amount == tip.base_amount
            and existing.tip_amount == tip.tip_amount
            and existing.user_wallet_id == tip.user_wallet_id
            and stored == given
            and self._keyring.decrypt(existing.user_api_key_encrypted) == api_key
        )
        if not same:
            raise PaymentConflict(f"payment {existing.payment_hash} is already stored with different amounts or destinations")
