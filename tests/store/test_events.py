"""Events against a real PostgreSQL: the audit trail is appended in order and never holds a secret."""

from collections.abc import Sequence

from tests.store.conftest import insert
from tipsplit.keyring import KeyRing
from tipsplit.store.events import scrub
from tipsplit.store.postgres import PostgresStore


def test_scrub_drops_secrets_at_any_depth() -> None:
    data = {"userApiKey": "k", "nested": {"api-key": "k", "client_secret": "s", "kept": 1}, "Password": "p", "n": 2}
    assert scrub(data) == {"nested": {"kept": 1}, "n": 2}
    assert scrub(None) == {}


async def test_events_are_appended_in_order_without_secrets(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    told: list[list[str]] = []

    async def listener(hashes: Sequence[str]) -> None:
        told.append(list(hashes))

    pg.change_listener = listener
    await pg.events.add(payment_hash, "note", {"text": "first", "apiKey": "must not be kept"})
    await pg.events.add(payment_hash, "note")
    events = await pg.events.of_payment(payment_hash)
    assert [(e.event_type, e.event_data) for e in events][1:] == [("note", {"text": "first"}), ("note", {})]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert told == [[payment_hash], [payment_hash]], "every appended event is a change of the payment's trail"
