"""Move the original app's `.tip-store.json` into the hybrid store, once, safely.

The source file is read once, backed up byte for byte before anything is
written, and never modified. Every entry is inserted with a conditional
INSERT (the payment hash is unique), so re-running the migration after it
finished, or after it was interrupted, only does what is left. Entries whose
invoice expired long ago are archived as `expired`: kept for the audit trail,
never pending again, so nothing can try to forward them.
"""

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tipsplit.domain.models import TipData, check_payment_hash, plan_legs
from tipsplit.domain.states import PaymentStatus
from tipsplit.keyring import CRYPTOJS_PREFIX, DecryptionError, KeyRing, decrypt_cryptojs, is_encrypted
from tipsplit.store.payments import NewPayment
from tipsplit.store.hybrid import HybridTipStore

LEGACY_INVOICE_LIFETIME = timedelta(hours=24)
EXPIRED_EVENT = "migrated_expired"
SOURCE = "tip-store.json"


class MigrationInputError(ValueError):
    """The source file cannot be migrated at all (missing, unreadable, not JSON, wrong shape)."""


class EntryError(ValueError):
    """One entry cannot be migrated; the message is the reason, never the entry's secrets."""


class Outcome(StrEnum):
    """What happened to one entry."""

    MIGRATED = "migrated"
    EXPIRED = "expired"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One line of the migration log."""

    key: str
    outcome: Outcome
    reason: str | None = None

    def to_json(self) -> str:
        body = {"paymentHash": self.key, "outcome": self.outcome.value}
        if self.reason:
            body["reason"] = self.reason
        return json.dumps(body)


@dataclass
class Summary:
    """Counts of a run, and where its backup and log went."""

    total: int = 0
    migrated: int = 0
    expired: int = 0
    skipped: int = 0
    failures: list[EntryResult] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    backup_path: Path | None = None
    log_path: Path | None = None

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def rate(self) -> float:
        """Entries handled per second."""
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: EntryResult) -> None:
        if result.outcome is Outcome.MIGRATED:
            self.migrated += 1
        elif result.outcome is Outcome.EXPIRED:
            self.expired += 1
        elif result.outcome is Outcome.SKIPPED:
            self.skipped += 1
        else:
            self.failures.append(result)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A valid entry: its hash, typed tip data (key in clear, in memory only) and whether it expired."""

    payment_hash: str
    tip: TipData
    expired: bool


@dataclass(frozen=True)
class Source:
    """The legacy file as read once: its exact bytes (for the backup) and its entries."""

    path: Path
    raw: bytes = field(repr=False)
    entries: dict[str, Any] = field(repr=False)


def read_source(path: Path) -> Source:
    """Read the legacy file; anything but a JSON object of entries is a MigrationInputError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MigrationInputError(
            f"{path}: no such file; name the original app's store with --file PATH (or set TIP_STORE_FILE)"
        ) from None
    except OSError as exc:
        raise MigrationInputError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MigrationInputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MigrationInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise MigrationInputError(
            f"{path}: expected a JSON object of entries keyed by payment hash, found a {type(data).__name__}"
        )
    return Source(path, raw, data)


def prepare(key: str, entry: Any, keyring: KeyRing, passphrase: str | None, now: datetime) -> Prepared:
    """Validate one legacy entry and open its API key; raises EntryError with the reason."""
    try:
        payment_hash = check_payment_hash(key)
    except ValueError as exc:
        raise EntryError(str(exc)) from None
    if not isinstance(entry, Mapping):
        raise EntryError(f"entry is a {type(entry).__name__}, expected an object")
    timestamp = entry.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or timestamp <= 0:
        raise EntryError("timestamp must be a positive number of milliseconds")
    try:
        created_at = datetime.fromtimestamp(timestamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise EntryError("timestamp is out of range") from None
    expires_at = created_at + LEGACY_INVOICE_LIFETIME
    fields = {k: v for k, v in entry.items() if k not in ("createdAt", "expiresAt", "status")}
    fields.update(userApiKey=_open_key(entry.get("userApiKey"), keyring, passphrase), createdAt=created_at,
                  expiresAt=expires_at)
    try:
        tip = TipData.model_validate(fields)
    except ValidationError as exc:
        raise EntryError("; ".join(_describe(err) for err in exc.errors())) from None
    return Prepared(payment_hash, tip, expires_at <= now)


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    return f"{where}: {message}" if where else message


def _open_key(value: Any, keyring: KeyRing, passphrase: str | None) -> str:
    """The API key in clear, from plaintext, the original app's CryptoJS format, or our own tokens."""
    if not isinstance(value, str) or not value:
        raise EntryError("userApiKey is missing")
    try:
        if is_encrypted(value):
            return keyring.decrypt(value)
        if value.startswith(CRYPTOJS_PREFIX):
            if passphrase is None:
                raise EntryError("userApiKey was encrypted by the original app: give its passphrase with"
                                 " --legacy-passphrase (or LEGACY_ENCRYPTION_KEY) and run the import again")
            return decrypt_cryptojs(value, passphrase)
    except DecryptionError as exc:
        raise EntryError(f"userApiKey: {exc}") from None
    return value


def backup(path: Path, raw: bytes, stamp: str) -> Path:
    """Write an exact, fsynced copy of the source next to it before anything else is written.

    The copy holds the source's API keys (often in plaintext), so it is created readable by its owner only
    (0600), whatever the umask, like the store file it copies.
    """
    target = path.with_name(f"{path.name}.backup-{stamp}")
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    return target


class Migrator:
    """Runs one migration of a legacy file into a HybridTipStore, a batch per transaction."""

    def __init__(
        self,
        store: HybridTipStore,
        keyring: KeyRing,
        *,
        passphrase: str | None = None,
        concurrency: int = 4,
        batch_size: int = 500,
        schema_ready: bool = True,
    ) -> None:
        """`schema_ready=False` (a dry run on a database without tables) treats every entry as new."""
        self._store = store
        self._pg = store.pg
        self._keyring = keyring
        self._passphrase = passphrase
        self._concurrency = concurrency
        self._batch_size = batch_size
        self._presence_known = schema_ready

    async def run(
        self,
        source: Source,
        *,
        dry_run: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_results: Callable[[list[EntryResult]], None] | None = None,
    ) -> Summary:
        """Migrate every entry of a file read by `read_source`, after backing it up."""
        path, entries = source.path, list(source.entries.items())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        summary = Summary(total=len(entries), dry_run=dry_run)
        if on_start is not None:
            on_start(len(entries))
        began = asyncio.get_running_loop().time()
        if not dry_run:
            summary.backup_path = await asyncio.to_thread(backup, path, source.raw, stamp)
            summary.log_path = path.with_name(f"{path.name}.migration-{stamp}.log")
        now = datetime.now(UTC)
        batches = [entries[i : i + self._batch_size] for i in range(0, len(entries), self._batch_size)]
        log_lines: list[str] = []

        async def worker() -> None:
            while batches:
                results = await self._batch(batches.pop(0), now, dry_run)
                for result in results:
                    summary.add(result)
                    log_lines.append(result.to_json())
                if on_results is not None:
                    on_results(results)

        try:
            await asyncio.gather(*(worker() for _ in range(self._concurrency)))
        finally:
            if summary.log_path is not None:
                await asyncio.to_thread(_write_log, summary.log_path, log_lines)
            summary.seconds = asyncio.get_running_loop().time() - began
        return summary

    async def _batch(self, batch: list[tuple[str, Any]], now: datetime, dry_run: bool) -> list[EntryResult]:
        results: list[EntryResult] = []
        valid: list[Prepared] = []
        for key, entry in batch:
            try:
                valid.append(prepare(key, entry, self._keyring, self._passphrase, now))
            except EntryError as exc:
                results.append(EntryResult(key, Outcome.FAILED, str(exc)))
        if dry_run:
            return results + list(await asyncio.gather(*(self._check(prepared) for prepared in valid)))
        return results + await self._write(valid)

    async def _check(self, prepared: Prepared) -> EntryResult:
        """What a real run would do with this entry, reading only."""
        if self._presence_known and await self._pg.payments.get(prepared.payment_hash, with_legs=False) is not None:
            return EntryResult(prepared.payment_hash, Outcome.SKIPPED, "already present")
        return EntryResult(prepared.payment_hash, Outcome.EXPIRED if prepared.expired else Outcome.MIGRATED)

    async def _write(self, batch: list[Prepared]) -> list[EntryResult]:
        """Insert the new ones in one transaction, then archive those whose invoice expired."""
        rows = []
        for prepared in batch:
            tip = prepared.tip
            assert tip.expires_at is not None
            encrypted = self._keyring.encrypt(tip.user_api_key.get_secret_value())
            rows.append(NewPayment(prepared.payment_hash, tip, encrypted, plan_legs(tip), tip.expires_at, SOURCE))
        new = await self._pg.payments.insert_many(rows)
        old = [p for p in batch if p.payment_hash not in new]
        found = await asyncio.gather(*(self._pg.payments.get(p.payment_hash, with_legs=False) for p in old))
        results: dict[str, EntryResult] = {}
        for prepared, existing in zip(old, found, strict=True):
            tip = prepared.tip
            if existing is None:
                results[prepared.payment_hash] = EntryResult(prepared.payment_hash, Outcome.FAILED, "vanished while being migrated")
            elif (existing.base_amount, existing.tip_amount, existing.user_wallet_id) != (
                tip.base_amount, tip.tip_amount, tip.user_wallet_id
            ):
                results[prepared.payment_hash] = EntryResult(
                    prepared.payment_hash, Outcome.FAILED, "already stored with different amounts or wallet"
                )
            elif not (prepared.expired and existing.status is PaymentStatus.PENDING):
                results[prepared.payment_hash] = EntryResult(prepared.payment_hash, Outcome.SKIPPED, "already present")
        expired = [p.payment_hash for p in batch if p.expired and p.payment_hash not in results]
        archived = set(await self._pg.outcomes.archive_expired(expired, EXPIRED_EVENT, {"source": SOURCE})) if expired else set()
        await asyncio.gather(*(self._store.forget_hot(ph) for ph in archived))
        return [
            results.get(p.payment_hash)
            or EntryResult(p.payment_hash, Outcome.EXPIRED if p.payment_hash in archived else Outcome.MIGRATED)
            for p in batch
        ]


def _write_log(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
