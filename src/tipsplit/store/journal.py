"""A durable write-ahead journal for the writes made while PostgreSQL is down.

A write is acknowledged only once its line is fsynced here; later the records
are replayed into PostgreSQL in order. Replay progress is fsynced to a sidecar
`<path>.done` file after every applied record, so an interrupted replay
resumes without re-applying more than the record in flight, and the journal
is compacted atomically once records are applied. Appends and compaction
share a flock on `<path>.lock`; replays are serialised by `<path>.replay.lock`.
"""

import asyncio
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from tipsplit.store.legacy_file import atomic_write, exclusive_lock, fsync_directory

SEQ_FIELD = "seq"
REPLAY_LOCK_POLL_SECONDS = 0.05


class JournalError(RuntimeError):
    """The journal holds a corrupt record before its end; the message names the file and line."""


class _SeqClock:
    """Sequence numbers that sort in append order within a process and never collide across processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            stamp = self._last
        return f"{stamp:020d}-{uuid.uuid4().hex}"


_clock = _SeqClock()


def _append_line(path: Path, line: bytes) -> None:
    """Append one newline-terminated line and fsync it, first cutting off a torn line left by a crash.

    The caller holds the lock. A line without its newline was never acknowledged,
    so dropping it loses nothing and keeps the next line from being glued to it.
    """
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            content = os.pread(fd, size, 0)
            os.ftruncate(fd, content.rfind(b"\n") + 1)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(path.parent)


class Journal:
    """Append-only JSON lines, each with a unique `seq`, replayed in append order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._done_path = self.path.with_name(self.path.name + ".done")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._replay_lock_path = self.path.with_name(self.path.name + ".replay.lock")

    async def append(self, record: Mapping[str, Any]) -> None:
        """Add a record; when this returns it is on disk and will survive a crash."""
        if SEQ_FIELD in record:
            raise ValueError(f"a journal record may not carry its own {SEQ_FIELD!r} field")
        line = json.dumps({SEQ_FIELD: _clock.next(), **record}, separators=(",", ":"), ensure_ascii=False)
        await asyncio.to_thread(self._append_locked, (line + "\n").encode("utf-8"))

    def records(self) -> list[dict[str, Any]]:
        """The records not yet replayed, in append order, each with its `seq`; a torn last line is ignored."""
        done = self._done()  # read before the journal, so a compaction in between cannot resurrect a record
        return [record for record in self._all_records() if record[SEQ_FIELD] not in done]

    async def replay(self, apply: Callable[[dict[str, Any]], Awaitable[None]]) -> int:
        """Apply every unreplayed record in order; stop and re-raise at the first failure, keeping the rest.

        Each record is handed to `apply` with its `seq`. Records appended while
        the replay runs are applied too.
        """
        lock_fd = await self._acquire_replay_lock()
        try:
            applied = 0
            try:
                while pending := await asyncio.to_thread(self.records):
                    for record in pending:
                        await apply(record)
                        await asyncio.to_thread(self._mark_done, record[SEQ_FIELD])
                        applied += 1
            finally:
                await asyncio.to_thread(self._compact)
            return applied
        finally:
            os.close(lock_fd)

    def __len__(self) -> int:
        return len(self.records())

    def _append_locked(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock_path):
            _append_line(self.path, line)

    def _all_records(self) -> list[dict[str, Any]]:
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = content.split(b"\n")[:-1]
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise JournalError(f"{self.path}: line {number} is not a valid JSON record") from None
            if not isinstance(record, dict) or not isinstance(record.get(SEQ_FIELD), str):
                raise JournalError(f"{self.path}: line {number} is not a journal record")
            records.append(record)
        return records

    def _done(self) -> set[str]:
        try:
            content = self._done_path.read_bytes()
        except FileNotFoundError:
            return set()
        return {line.decode("ascii", "replace") for line in content.split(b"\n")[:-1] if line}

    def _mark_done(self, seq: str) -> None:
        _append_line(self._done_path, (seq + "\n").encode("ascii"))

    def _compact(self) -> None:
        """Drop applied records: rewrite the journal without them, then forget the progress file."""
        if not self._done_path.exists():
            return
        with exclusive_lock(self._lock_path):
            done = self._done()
            kept = [record for record in self._all_records() if record[SEQ_FIELD] not in done]
            if kept or self.path.exists():
                body = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in kept)
                atomic_write(self.path, body.encode("utf-8"))
            self._done_path.unlink()
            fsync_directory(self.path.parent)

    async def _acquire_replay_lock(self) -> int:
        """Poll a non-blocking flock, so a cancelled replay never leaves a thread holding the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._replay_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    await asyncio.sleep(REPLAY_LOCK_POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise
