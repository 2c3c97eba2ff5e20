"""The original app's `.tip-store.json`, kept safe for several writers and with keys sealed.

Every read-modify-write holds an exclusive `flock` on a sibling lock file and
replaces the file atomically (temp file, fsync, rename, directory fsync), so
concurrent processes never lose each other's entries and a crash leaves
either the old file or the new one. Readers need no lock: they always see a
whole file.
"""

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tipsplit.domain.models import check_payment_hash
from tipsplit.keyring import CRYPTOJS_PREFIX, DecryptionError, KeyRing, decrypt_cryptojs, is_encrypted

API_KEY_FIELD = "userApiKey"


class FileStoreError(RuntimeError):
    """The store file cannot be used; the message names the file and the problem."""


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path`, which is never replaced, across processes and threads."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make a rename or new file in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old content or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


class FileTipStore:
    """Tip data by payment hash in one JSON file, in the original app's camelCase shape."""

    def __init__(self, path: Path, keyring: KeyRing | None = None, legacy_passphrase: str | None = None) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._keyring = keyring
        self._legacy_passphrase = legacy_passphrase

    def store(self, payment_hash: str, tip_data: Mapping[str, Any]) -> None:
        """Write one entry; the API key is sealed first, and a plaintext key without a key ring is refused."""
        key = check_payment_hash(payment_hash)
        entry = dict(tip_data)
        entry.setdefault("timestamp", int(time.time() * 1000))
        api_key = entry.get(API_KEY_FIELD)
        if isinstance(api_key, str) and not is_encrypted(api_key):
            if self._keyring is None:
                raise ValueError("refusing to write a plaintext API key: the file store has no key ring")
            entry[API_KEY_FIELD] = self._keyring.encrypt(api_key)
        with self._locked() as entries:
            entries[key] = entry

    def get(self, payment_hash: str) -> dict[str, Any] | None:
        """The entry with its API key in clear, or None."""
        entry = self.load_raw().get(check_payment_hash(payment_hash))
        if entry is None:
            return None
        result = dict(entry)
        if isinstance(result.get(API_KEY_FIELD), str):
            result[API_KEY_FIELD] = self.decrypt_key(result[API_KEY_FIELD])
        return result

    def remove(self, payment_hash: str) -> bool:
        """Delete an entry; False when there was none."""
        key = check_payment_hash(payment_hash)
        with self._locked() as entries:
            return entries.pop(key, None) is not None

    def load_raw(self) -> dict[str, dict[str, Any]]:
        """The whole file as stored, keys still sealed; a missing file is an empty store."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise FileStoreError(f"{self.path}: cannot be read ({type(exc).__name__})") from None
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise FileStoreError(f"{self.path}: not valid JSON ({exc.msg} at {where})") from None
        if not isinstance(data, dict):
            raise FileStoreError(f"{self.path}: expected a JSON object of entries, found {type(data).__name__}")
        for payment_hash, entry in data.items():
            if not isinstance(entry, dict):
                raise FileStoreError(
                    f"{self.path}: entry {payment_hash[:16]!r} is a {type(entry).__name__}, expected an object"
                )
        return data

    def decrypt_key(self, stored_value: str) -> str:
        """A stored API key in clear: our enc:v1 tokens, the original app's CryptoJS tokens, or legacy plaintext."""
        if is_encrypted(stored_value):
            if self._keyring is None:
                raise DecryptionError("an encrypted API key was found but the file store has no key ring")
            return self._keyring.decrypt(stored_value)
        if stored_value.startswith(CRYPTOJS_PREFIX):
            if self._legacy_passphrase is None:
                raise DecryptionError("a CryptoJS-encrypted API key was found but no legacy passphrase is set")
            return decrypt_cryptojs(stored_value, self._legacy_passphrase)
        return stored_value

    def reseal_keys(self) -> int:
        """Seal every key under the key ring's newest key (plaintext ones too); returns how many changed."""
        if self._keyring is None:
            raise ValueError("the file store has no key ring to seal keys with")
        keyring = self._keyring
        changed = 0
        with self._locked() as entries:
            for entry in entries.values():
                value = entry.get(API_KEY_FIELD)
                if not isinstance(value, str) or not value:
                    continue
                if is_encrypted(value):
                    if not keyring.needs_rotation(value):
                        continue
                    entry[API_KEY_FIELD] = keyring.rotate(value)
                else:
                    entry[API_KEY_FIELD] = keyring.encrypt(self.decrypt_key(value))
                changed += 1
        return changed

    def stats(self) -> dict[str, int]:
        """How many entries there are and how their API keys are stored, for migration planning."""
        counts = {"entries": 0, "encrypted": 0, "cryptojs": 0, "plaintext": 0, "without_key": 0}
        for entry in self.load_raw().values():
            counts["entries"] += 1
            value = entry.get(API_KEY_FIELD)
            if not isinstance(value, str) or not value:
                counts["without_key"] += 1
            elif is_encrypted(value):
                counts["encrypted"] += 1
            elif value.startswith(CRYPTOJS_PREFIX):
                counts["cryptojs"] += 1
            else:
                counts["plaintext"] += 1
        return counts

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write under the lock; the file is rewritten only if the body finishes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock_path):
            entries = self.load_raw()
            yield entries
            atomic_write(self.path, json.dumps(entries, indent=2, ensure_ascii=False).encode("utf-8"))
