"""`tipsplit keys rotate` re-seals stored API keys under the newest key so the old one can be retired."""

import asyncio
import base64
import json
from pathlib import Path

from tests.cli.conftest import KEY_NEW, KEY_OLD, Cli
from tests.cli.legacy import PLAINTEXT_KEY, generate
from tipsplit.keyring import KeyRing
from tipsplit.settings import load_settings
from tipsplit.store.hybrid import HybridTipStore

FOREIGN_TOKEN = "enc:v1:gone:" + base64.urlsafe_b64encode(bytes(40)).decode()


async def read_through_store(cli: Cli, keys: str, hashes: list[str]) -> list[str]:
    """Read payments as the service does (warming Redis); returns their API keys in clear."""
    settings = load_settings(database_url=cli.database_url, redis_url=cli.redis_url,
                             redis_key_prefix=cli.prefix, encryption_keys=keys)
    store = HybridTipStore(settings, KeyRing.from_settings(settings))
    await store.initialize()
    try:
        found = [await store.get_tip_data(h) for h in hashes]
        return [tip["userApiKey"] for tip in found if tip is not None]
    finally:
        await store.close()


async def test_rotation_reseals_postgres_and_drops_stale_redis_entries(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    hashes = list(generate(source, 30))
    assert (await asyncio.to_thread(cli, "migrate-to-hybrid", "--file", str(source))).exit_code == 0
    assert await read_through_store(cli, KEY_OLD, hashes[:10]) == [PLAINTEXT_KEY] * 10
    assert any(b"enc:v1:k1:" in value for value in cli.redis_values())
    cli.sql("UPDATE payment_splits SET user_api_key_encrypted = %s WHERE payment_hash = %s RETURNING 1",
            FOREIGN_TOKEN, hashes[-1])

    both = f"{KEY_OLD},{KEY_NEW}"
    first = await asyncio.to_thread(cli, "keys", "rotate", "--json", ENCRYPTION_KEYS=both)
    assert first.exit_code == 1, first.output
    report = json.loads(first.stdout)
    assert (report["keyId"], report["examined"], report["rotated"], report["unreadable"]) == ("k2", 30, 29, 1)
    assert report["unreadablePayments"][0]["paymentHash"] == hashes[-1]
    assert "ENCRYPTION_KEYS" in first.stderr
    tokens = [row[0] for row in cli.sql("SELECT user_api_key_encrypted FROM payment_splits")]
    assert sum(token.startswith("enc:v1:k2:") for token in tokens) == 29
    assert not any(b"enc:v1:k1:" in value for value in cli.redis_values())
    events = cli.sql("SELECT count(*) FROM payment_events WHERE event_type = 'api_key_rotated'")
    assert events == [(29,)]

    old_token = KeyRing.from_settings(load_settings(encryption_keys=KEY_OLD)).encrypt(PLAINTEXT_KEY)
    cli.sql("UPDATE payment_splits SET user_api_key_encrypted = %s WHERE payment_hash = %s RETURNING 1",
            old_token, hashes[-1])
    second = await asyncio.to_thread(cli, "keys", "rotate", ENCRYPTION_KEYS=both)
    assert second.exit_code == 0, second.output
    assert "re-encrypted" in second.stdout

    assert await read_through_store(cli, KEY_NEW, hashes) == [PLAINTEXT_KEY] * 30
    third = json.loads((await asyncio.to_thread(cli, "keys", "rotate", "--json", ENCRYPTION_KEYS=KEY_NEW)).stdout)
    assert third["examined"] == 0


def test_rotation_without_keys_is_a_configuration_error(cli: Cli) -> None:
    result = cli("keys", "rotate", ENCRYPTION_KEYS="k1:short")
    assert result.exit_code == 2 and "ENCRYPTION_KEYS" in result.stderr


def test_rotation_reseals_the_tills_keys(cli: Cli) -> None:
    assert cli("db", "upgrade").exit_code == 0
    old_ring = KeyRing.from_settings(load_settings(encryption_keys=KEY_OLD))
    cli.sql("INSERT INTO tills (name, token_hash, api_key_encrypted, wallet_id, tip_presets, team)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING id",
            "Bar", "0" * 64, old_ring.encrypt("till-merchant-key"), "w", [10], "[]")
    report = json.loads(cli("keys", "rotate", "--json", ENCRYPTION_KEYS=f"{KEY_OLD},{KEY_NEW}").stdout)
    assert (report["tillsRotated"], report["tillsUnreadable"]) == (1, [])
    [(sealed,)] = cli.sql("SELECT api_key_encrypted FROM tills")
    assert sealed.startswith("enc:v1:k2:")
    assert KeyRing.from_settings(load_settings(encryption_keys=KEY_NEW)).decrypt(sealed) == "till-merchant-key"
