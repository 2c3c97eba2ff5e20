"""The `.tip-store.json` file store: sealed keys, legacy keys, corrupt files, many writer processes."""

import json
import multiprocessing
import os
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from tests.store.test_crypto import CRYPTOJS_VECTORS
from tipsplit.keyring import DecryptionError, KeyRing
from tipsplit.store.legacy_file import FileStoreError, FileTipStore

API_KEY = "blink_FileStoreTestKeyNeverInClear0123456789"
HASH_A = "a" * 64
HASH_B = "b" * 64


def tip_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "baseAmount": 1000,
        "tipAmount": 150,
        "tipPercent": 15,
        "tipRecipient": "alice_tips",
        "userApiKey": API_KEY,
        "userWalletId": "wallet-123",
        "displayCurrency": "USD",
        "baseAmountDisplay": "0.60",
        "tipAmountDisplay": "0.09",
        "memo": "table 4",
    }
    data.update(overrides)
    return data


@pytest.fixture()
def keyring() -> KeyRing:
    return KeyRing({"k1": os.urandom(32)})


def test_round_trip_seals_the_key_on_disk(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / ".tip-store.json"
    store = FileTipStore(path, keyring)
    store.store(HASH_A, tip_data())
    got = store.get(HASH_A)
    assert got is not None
    assert got["userApiKey"] == API_KEY
    assert {k: v for k, v in got.items() if k != "timestamp"} == tip_data()
    assert isinstance(got["timestamp"], int) and got["timestamp"] > 1_600_000_000_000
    raw_text = path.read_text()
    assert API_KEY not in raw_text
    assert json.loads(raw_text)[HASH_A]["userApiKey"].startswith("enc:v1:k1:")
    assert store.load_raw()[HASH_A]["userApiKey"].startswith("enc:v1:k1:")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert store.get(HASH_B) is None


def test_multiple_recipients_and_uppercase_hash(tmp_path: Path, keyring: KeyRing) -> None:
    store = FileTipStore(tmp_path / "s.json", keyring)
    recipients = [{"username": "alice_tips", "share": 60}, {"username": "bob", "share": 40}]
    store.store(HASH_A.upper(), tip_data(tipRecipient=None, tipRecipients=recipients))
    got = store.get(HASH_A)
    assert got is not None and got["tipRecipients"] == recipients


def test_refuses_a_plaintext_key_without_a_key_ring(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "s.json"
    with pytest.raises(ValueError, match="plaintext API key"):
        FileTipStore(path).store(HASH_A, tip_data())
    assert not path.exists()
    sealed = keyring.encrypt(API_KEY)
    FileTipStore(path).store(HASH_A, tip_data(userApiKey=sealed))
    assert FileTipStore(path, keyring).get(HASH_A)["userApiKey"] == API_KEY  # type: ignore[index]
    with pytest.raises(DecryptionError, match="no key ring"):
        FileTipStore(path).get(HASH_A)


def test_reads_the_original_apps_plaintext_and_cryptojs_keys(tmp_path: Path, keyring: KeyRing) -> None:
    token, passphrase, plaintext = CRYPTOJS_VECTORS[0]
    path = tmp_path / ".tip-store.json"
    legacy = {
        HASH_A: {**tip_data(), "timestamp": 1700000000000},
        HASH_B: {**tip_data(userApiKey=token), "timestamp": 1700000000001},
    }
    path.write_text(json.dumps(legacy))
    store = FileTipStore(path, keyring, legacy_passphrase=passphrase)
    assert store.get(HASH_A)["userApiKey"] == API_KEY  # type: ignore[index]
    assert store.get(HASH_B)["userApiKey"] == plaintext  # type: ignore[index]
    assert store.decrypt_key(token) == plaintext
    assert store.stats() == {"entries": 2, "encrypted": 0, "cryptojs": 1, "plaintext": 1, "without_key": 0}
    with pytest.raises(DecryptionError, match="legacy passphrase"):
        FileTipStore(path, keyring).get(HASH_B)
    with pytest.raises(DecryptionError):
        FileTipStore(path, keyring, legacy_passphrase="wrong").get(HASH_B)


def test_remove(tmp_path: Path, keyring: KeyRing) -> None:
    store = FileTipStore(tmp_path / "s.json", keyring)
    store.store(HASH_A, tip_data())
    store.store(HASH_B, tip_data())
    assert store.remove(HASH_A) is True
    assert store.remove(HASH_A) is False
    assert store.get(HASH_A) is None
    assert list(store.load_raw()) == [HASH_B]
    assert store.stats()["entries"] == 1


def test_missing_or_empty_file_is_an_empty_store(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "deeper" / "s.json"
    store = FileTipStore(path, keyring)
    assert store.load_raw() == {} and store.get(HASH_A) is None and store.remove(HASH_A) is False
    path.write_text("")
    assert store.stats()["entries"] == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"aaa": {"baseAmount": 1', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"aaa": 5}', "expected an object"),
        (b"\xff\xfe{}", "cannot be read"),
    ],
)
def test_a_bad_file_is_an_error_naming_it(tmp_path: Path, keyring: KeyRing, content: str | bytes, problem: str) -> None:
    path = tmp_path / ".tip-store.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    store = FileTipStore(path, keyring)
    for action in (store.load_raw, lambda: store.get(HASH_A), lambda: store.store(HASH_A, tip_data())):
        with pytest.raises(FileStoreError, match=problem) as caught:
            action()
        assert str(path) in str(caught.value)
    assert path.read_bytes() == (content if isinstance(content, bytes) else content.encode())


WRITERS = 8
WRITES_EACH = 50


def _writer(path: str, key: bytes, worker: int, start: Event) -> None:
    store = FileTipStore(Path(path), KeyRing({"k1": key}))
    start.wait()
    for i in range(WRITES_EACH):
        store.store(f"{worker:032x}{i:032x}", tip_data(baseAmount=worker * 1000 + i))


def test_many_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".tip-store.json"
    key = os.urandom(32)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_writer, args=(str(path), key, n, start)) for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=90)
        assert worker.exitcode == 0
    entries = json.loads(path.read_text())
    assert len(entries) == WRITERS * WRITES_EACH
    store = FileTipStore(path, KeyRing({"k1": key}))
    for n in range(WRITERS):
        for i in range(WRITES_EACH):
            got = store.get(f"{n:032x}{i:032x}")
            assert got is not None and got["baseAmount"] == n * 1000 + i and got["userApiKey"] == API_KEY
    assert API_KEY not in path.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_reseal_moves_every_key_under_the_newest_key(tmp_path: Path) -> None:
    first_key = os.urandom(32)
    path = tmp_path / "store.json"
    FileTipStore(path, KeyRing({"k1": first_key})).store(HASH_A, tip_data())
    raw = json.loads(path.read_text())
    raw[HASH_B] = {**raw[HASH_A], "userApiKey": "legacy-plaintext-key"}
    path.write_text(json.dumps(raw))

    both = KeyRing({"k1": first_key, "k2": os.urandom(32)})
    store = FileTipStore(path, both)
    assert store.reseal_keys() == 2
    assert store.reseal_keys() == 0
    text = path.read_text()
    assert "enc:v1:k1:" not in text and "legacy-plaintext-key" not in text and text.count("enc:v1:k2:") == 2
    assert (store.get(HASH_A) or {})["userApiKey"] == API_KEY
    assert (store.get(HASH_B) or {})["userApiKey"] == "legacy-plaintext-key"
