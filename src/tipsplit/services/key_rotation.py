"""Re-encrypt stored merchant API keys under the newest encryption key, so older keys can be retired.

PostgreSQL is walked in hash order, a batch at a time; each key is replaced
only if it is still the token that was read (a conditional UPDATE), so a
payment written meanwhile is never overwritten. Redis entries of rotated
payments are dropped and come back, re-sealed, from PostgreSQL on the next read.
The file store (when the file fallback is on) is re-sealed in place; journal
records still waiting for PostgreSQL are counted, since they keep their old
key until replayed — the old key must stay in ENCRYPTION_KEYS until then.
"""

import asyncio
from functools import partial
from dataclasses import dataclass, field

from tipsplit.keyring import DecryptionError, KeyRing
from tipsplit.store.api_keys import ApiKeys
from tipsplit.store.hot import HotStore, if_up
from tipsplit.store.journal import Journal
from tipsplit.store.legacy_file import FileTipStore


@dataclass
class RotationReport:
    """Counts for the operator, and the payments whose key could not be opened."""

    key_id: str
    examined: int = 0
    rotated: int = 0
    changed_meanwhile: int = 0
    file_store_resealed: int = 0
    journal_waiting: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


async def rotate_keys(
    api_keys: ApiKeys,
    hot: HotStore | None,
    keyring: KeyRing,
    *,
    file_store: FileTipStore | None = None,
    journal: Journal | None = None,
    batch_size: int = 500,
) -> RotationReport:
    """Re-seal every stored API key not under the current key id.

    PostgreSQL's keys through `api_keys`, the file store's in place; Redis
    (`hot`) only loses the entries of rotated payments, and the `journal` is
    only counted.
    """
    report = RotationReport(keyring.current_id)
    if file_store is not None:
        report.file_store_resealed = await asyncio.to_thread(file_store.reseal_keys)
    if journal is not None:
        report.journal_waiting = len(journal)
    after = ""
    while True:
        batch = await api_keys.not_under(keyring.current_id, after=after, limit=batch_size)
        if not batch:
            return report
        after = batch[-1][0]
        report.examined += len(batch)
        changes: list[tuple[str, str, str]] = []
        for payment_hash, token in batch:
            try:
                changes.append((payment_hash, token, keyring.rotate(token)))
            except DecryptionError as exc:
                report.unreadable.append((payment_hash, str(exc)))
        rotated = await api_keys.replace(changes, keyring.current_id) if changes else []
        report.rotated += len(rotated)
        report.changed_meanwhile += len(changes) - len(rotated)
        await asyncio.gather(*(if_up(hot, partial(HotStore.delete_tip, payment_hash=ph)) for ph in rotated))
