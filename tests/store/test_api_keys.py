"""Sealed API keys against a real PostgreSQL: found by the key they are sealed under, replaced only if unchanged."""

import os

import pytest

from tests.store.conftest import TEST_API_KEY, insert, new_hash
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore


async def test_keys_not_under_the_current_one_are_replaced_if_unchanged(pg: PostgresStore) -> None:
    old_ring = KeyRing({"rot_old": os.urandom(32)})
    prefix = new_hash()[:24]
    hashes = sorted([await insert(pg, old_ring, prefix + new_hash()[24:]) for _ in range(3)])
    found = await pg.api_keys.not_under("rot_new", after=prefix, limit=3)
    assert [h for h, _ in found] == hashes
    assert [h for h, _ in await pg.api_keys.not_under("rot_new", after=hashes[0], limit=1)] == [hashes[1]]
    sealed = dict(found)
    changes = [(h, sealed[h], f"enc:v1:rot_new:{h}") for h in hashes[:2]]
    changes.append((hashes[2], "enc:v1:rot_old:not-the-stored-token", "enc:v1:rot_new:x"))
    assert sorted(await pg.api_keys.replace(changes, "rot_new")) == hashes[:2]
    remaining = await pg.api_keys.not_under("rot_new", after=prefix, limit=3)
    assert [h for h, _ in remaining][:1] == [hashes[2]] and not {h for h, _ in remaining} & set(hashes[:2])
    assert old_ring.decrypt(dict(remaining)[hashes[2]]) == TEST_API_KEY, "a key changed meanwhile is left as it is"
    rotated = [e.event_data for e in await pg.events.of_payment(hashes[0]) if e.event_type == "api_key_rotated"]
    assert rotated == [{"keyId": "rot_new"}]
    assert not [e for e in await pg.events.of_payment(hashes[2]) if e.event_type == "api_key_rotated"]
    with pytest.raises(ValueError, match="not encrypted"):
        await pg.api_keys.replace([(hashes[2], sealed[hashes[2]], TEST_API_KEY)], "rot_new")
