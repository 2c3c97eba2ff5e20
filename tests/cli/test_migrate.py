"""migrate-to-hybrid: a legacy .tip-store.json lands in PostgreSQL once, with keys sealed and old invoices archived."""

import asyncio
import contextlib
import json
import os
import stat
from pathlib import Path

import pytest

from tests.cli.conftest import KEY_OLD, Cli
from tests.cli.legacy import CRYPTOJS_KEY, PASSPHRASE, PLAINTEXT_KEY, cryptojs_encrypt, entry, generate
from tipsplit.cli.open_store import open_store
from tipsplit.services.legacy_import import EntryResult, Migrator, read_source
from tipsplit.settings import load_settings


def counts(cli: Cli) -> dict[str, int]:
    return dict(cli.sql("SELECT status, count(*) FROM payment_splits GROUP BY status"))


def latest_log(path: Path) -> list[dict[str, str]]:
    logs = sorted(path.parent.glob(f"{path.name}.migration-*.log"))
    return [json.loads(line) for line in logs[-1].read_text().splitlines()]


def stored_text(cli: Cli) -> str:
    """Everything tipsplit keeps about payments, in PostgreSQL and Redis, as one string to search."""
    rows = cli.sql(
        "SELECT p::text FROM payment_splits p UNION ALL SELECT e::text FROM payment_events e"
        " UNION ALL SELECT l::text FROM payment_legs l"
    )
    return "\n".join(r[0] for r in rows) + "\n".join(v.decode("latin-1") for v in cli.redis_values())


def test_generated_file_migrates_once(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / ".tip-store.json"
    entries = generate(source, 2_000, expired_every=10)
    before = source.read_bytes()

    first = cli("migrate-to-hybrid", "--file", str(source))
    assert first.exit_code == 0, first.output
    assert counts(cli) == {"pending": 1_800, "expired": 200}
    assert source.read_bytes() == before
    [backup] = tmp_path.glob(".tip-store.json.backup-*")
    assert backup.read_bytes() == before
    outcomes = {line["paymentHash"]: line["outcome"] for line in latest_log(source)}
    assert len(outcomes) == 2_000 and set(outcomes) == set(entries)
    assert sorted(set(outcomes.values())) == ["expired", "migrated"]
    assert "2,000" in first.stdout or "2000" in first.stdout

    second = cli("migrate-to-hybrid", "--file", str(source))
    assert second.exit_code == 0, second.output
    assert {line["outcome"] for line in latest_log(source)} == {"skipped"}
    assert counts(cli) == {"pending": 1_800, "expired": 200}
    assert cli.sql("SELECT count(*) FROM payment_legs")[0][0] == 2_000 + 2_000 + 2_000 // 3 + 1


def test_expired_entries_are_archived_and_never_pending_again(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    fresh, old = "a" * 64, "b" * 64
    source.write_text(json.dumps({fresh: entry(1), old: entry(2, age_ms=25 * 3600 * 1000)}))

    assert cli("migrate-to-hybrid", "--file", str(source)).exit_code == 0
    status = dict(cli.sql("SELECT payment_hash, status FROM payment_splits"))
    assert status == {fresh: "pending", old: "expired"}
    events = [r[0] for r in cli.sql("SELECT event_type FROM payment_events WHERE payment_hash = %s ORDER BY id", old)]
    assert events[0] == "created" and events[-1] == "migrated_expired"

    assert cli("migrate-to-hybrid", "--file", str(source)).exit_code == 0
    assert dict(cli.sql("SELECT payment_hash, status FROM payment_splits")) == status


def test_interrupted_run_is_finished_by_a_rerun(cli: Cli, tmp_path: Path) -> None:
    everything = tmp_path / "all.json"
    entries = generate(everything, 300, expired_every=4)
    part = tmp_path / "part.json"
    part.write_text(json.dumps(dict(list(entries.items())[:120])))
    assert cli("migrate-to-hybrid", "--file", str(part)).exit_code == 0
    cli.sql("UPDATE payment_splits SET status = 'pending', claim_owner = NULL WHERE status = 'expired'"
            " RETURNING 1")

    rerun = cli("migrate-to-hybrid", "--file", str(everything))
    assert rerun.exit_code == 0, rerun.output
    outcomes = [line["outcome"] for line in latest_log(everything)]
    assert outcomes.count("migrated") + outcomes.count("expired") == 300 - 90
    assert counts(cli) == {"pending": 225, "expired": 75}


async def test_a_cancelled_run_is_finished_by_a_rerun(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    generate(source, 3_000, expired_every=7)
    settings = load_settings(database_url=cli.database_url, redis_url=cli.redis_url,
                             redis_key_prefix=cli.prefix, encryption_keys=KEY_OLD)
    handled = 0
    enough = asyncio.Event()

    def count(results: list[EntryResult]) -> None:
        nonlocal handled
        handled += len(results)
        if handled >= 500:
            enough.set()

    async with open_store(settings) as opened:
        run = asyncio.create_task(
            Migrator(opened.store, opened.keyring, batch_size=100, concurrency=2).run(read_source(source), on_results=count)
        )
        await enough.wait()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    partial = sum(counts(cli).values())
    assert 0 < partial < 3_000

    rerun = await asyncio.to_thread(cli, "migrate-to-hybrid", "--file", str(source))
    assert rerun.exit_code == 0, rerun.output
    outcomes = [line["outcome"] for line in latest_log(source)]
    assert len(outcomes) == 3_000 and outcomes.count("skipped") <= partial
    assert counts(cli) == {"pending": 3_000 - 429, "expired": 429}


def test_cryptojs_keys_are_opened_with_the_legacy_passphrase(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    sealed = cryptojs_encrypt(CRYPTOJS_KEY, PASSPHRASE)
    source.write_text(json.dumps({"c" * 64: entry(1, api_key=sealed), "d" * 64: entry(2)}))

    without = cli("migrate-to-hybrid", "--file", str(source))
    assert without.exit_code == 1
    said = " ".join(without.stdout.split())
    assert "--legacy-passphrase" in said and "encrypted by the original app" in said
    assert counts(cli) == {"pending": 1}

    wrong = cli("migrate-to-hybrid", "--file", str(source), "--legacy-passphrase", "not-it")
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.stdout

    right = cli("migrate-to-hybrid", "--file", str(source), LEGACY_ENCRYPTION_KEY=PASSPHRASE)
    assert right.exit_code == 0, right.output
    assert counts(cli) == {"pending": 2}
    assert cli.sql("SELECT starts_with(user_api_key_encrypted, 'enc:v1:k1:') FROM payment_splits") == [(True,), (True,)]


def test_plaintext_keys_never_reach_postgres_or_redis(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    generate(source, 60, expired_every=5, cryptojs_every=3)
    result = cli("migrate-to-hybrid", "--file", str(source), "--legacy-passphrase", PASSPHRASE)
    assert result.exit_code == 0, result.output
    text = stored_text(cli)
    assert "enc:v1:" in text
    assert PLAINTEXT_KEY not in text and CRYPTOJS_KEY not in text and "U2FsdGVkX1" not in text
    assert PLAINTEXT_KEY not in result.output and PASSPHRASE not in result.output


def test_the_backup_is_readable_by_its_owner_only(cli: Cli, tmp_path: Path) -> None:
    """It holds the source's API keys in plaintext: 0600 like the source, whatever the umask."""
    source = tmp_path / "store.json"
    generate(source, 5)
    source.chmod(0o600)
    previous = os.umask(0o022)
    try:
        result = cli("migrate-to-hybrid", "--file", str(source))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    [backup] = tmp_path.glob("store.json.backup-*")
    assert PLAINTEXT_KEY in backup.read_text()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_dry_run_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    generate(source, 50, expired_every=5)
    result = cli("migrate-to-hybrid", "--file", str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would migrate" in result.stdout
    assert cli.sql("SELECT to_regclass('payment_splits') IS NULL") == [(True,)]
    assert cli.redis_values() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'[{"baseAmount": 1}]', "expected a JSON object"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_broken_files_are_refused_with_nothing_written(cli: Cli, tmp_path: Path, content: bytes, message: str) -> None:
    source = tmp_path / "store.json"
    source.write_bytes(content)
    result = cli("migrate-to-hybrid", "--file", str(source))
    assert result.exit_code == 2
    assert message in result.stderr
    assert cli.sql("SELECT to_regclass('payment_splits') IS NULL") == [(True,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.json"]


def test_missing_and_unreadable_files_are_refused(cli: Cli, tmp_path: Path) -> None:
    missing = cli("migrate-to-hybrid", "--file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr and "--file PATH" in " ".join(missing.stderr.split())
    (tmp_path / "dir.json").mkdir()
    unreadable = cli("migrate-to-hybrid", "--file", str(tmp_path / "dir.json"))
    assert unreadable.exit_code == 2 and "cannot be read" in unreadable.stderr


def test_bad_entries_are_reported_and_skipped(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "store.json"
    good = "e" * 64
    source.write_text(json.dumps({
        good: entry(1),
        "not-a-hash": entry(2),
        "f" * 64: "a string",
        "1" * 64: entry(3, baseAmount=-5),
        "2" * 64: entry(4, userApiKey=""),
        "3" * 64: {k: v for k, v in entry(5).items() if k != "timestamp"},
        "4" * 64: {k: v for k, v in entry(6).items() if k not in ("tipRecipient", "tipRecipients")},
    }))
    result = cli("migrate-to-hybrid", "--file", str(source))
    assert result.exit_code == 1, result.output
    assert counts(cli) == {"pending": 1}
    reasons = {line["paymentHash"]: line.get("reason", "") for line in latest_log(source) if line["outcome"] == "failed"}
    assert len(reasons) == 6
    assert "64 hexadecimal" in reasons["not-a-hash"]
    assert "expected an object" in reasons["f" * 64]
    assert "baseAmount" in reasons["1" * 64]
    assert "userApiKey is missing" in reasons["2" * 64]
    assert "timestamp" in reasons["3" * 64]
    assert "tip recipient" in reasons["4" * 64]
    assert "failed" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hundred_thousand_entries(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / ".tip-store.json"
    generate(source, 100_000, expired_every=20)
    result = cli("migrate-to-hybrid", "--file", str(source))
    assert result.exit_code == 0, result.output
    print(result.stdout)
    assert counts(cli) == {"pending": 95_000, "expired": 5_000}
    again = cli("migrate-to-hybrid", "--file", str(source))
    assert again.exit_code == 0
    assert {line["outcome"] for line in latest_log(source)} == {"skipped"}
