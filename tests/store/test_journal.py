"""The write-ahead journal used while PostgreSQL is down: durable appends and resumable, exactly-once replay."""

import asyncio
import json
import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from tipsplit.store.journal import Journal, JournalError


class Boom(RuntimeError):
    pass


def payloads(journal_records: list[dict[str, Any]]) -> list[Any]:
    return [record["n"] for record in journal_records]


async def test_append_then_records_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "wal" / "journal.jsonl")
    assert journal.records() == [] and len(journal) == 0
    for n in range(5):
        await journal.append({"op": "store", "n": n, "memo": "ünïcødé ⚡"})
    records = journal.records()
    assert payloads(records) == [0, 1, 2, 3, 4]
    assert records[0]["op"] == "store" and records[0]["memo"] == "ünïcødé ⚡"
    seqs = [record["seq"] for record in records]
    assert len(set(seqs)) == 5 and seqs == sorted(seqs)
    assert len(journal) == 5


async def test_a_record_may_not_bring_its_own_seq(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seq"):
        await Journal(tmp_path / "j").append({"seq": "1"})


async def test_appended_records_are_on_disk_for_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    await Journal(path).append({"n": 1})
    await Journal(path).append({"n": 2})
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["n"] for line in lines[:-1]] == [1, 2]
    assert payloads(Journal(path).records()) == [1, 2]


async def test_replay_applies_in_order_and_empties_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for n in range(10):
        await journal.append({"n": n})
    seen: list[int] = []

    async def apply(record: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(record["n"])

    assert await journal.replay(apply) == 10
    assert seen == list(range(10))
    assert len(Journal(path)) == 0
    assert path.read_bytes() == b""
    assert not path.with_name(path.name + ".done").exists()
    assert await journal.replay(apply) == 0


async def test_a_failed_replay_keeps_the_rest_and_the_next_one_finishes_without_repeats(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for n in range(10):
        await journal.append({"n": n})
    applications: Counter[int] = Counter()
    failing = {5}

    async def apply(record: dict[str, Any]) -> None:
        if record["n"] in failing:
            failing.discard(record["n"])
            raise Boom("database went away again")
        applications[record["n"]] += 1

    with pytest.raises(Boom):
        await journal.replay(apply)
    assert payloads(Journal(path).records()) == [5, 6, 7, 8, 9]
    await journal.append({"n": 10})
    assert await Journal(path).replay(apply) == 6
    assert applications == Counter(range(11))
    assert len(journal) == 0


async def test_an_interrupted_replay_resumes_from_the_progress_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for n in range(6):
        await journal.append({"n": n})
    applications: Counter[int] = Counter()

    async def apply_then_hang(record: dict[str, Any]) -> None:
        applications[record["n"]] += 1
        if record["n"] == 3:
            await asyncio.sleep(3600)

    task = asyncio.create_task(journal.replay(apply_then_hang))
    while applications[3] == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert payloads(Journal(path).records()) == [3, 4, 5]

    async def apply(record: dict[str, Any]) -> None:
        applications[record["n"]] += 1

    assert await Journal(path).replay(apply) == 3
    assert applications == Counter({0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1})


async def test_progress_survives_without_compaction(tmp_path: Path) -> None:
    """A crash after records were marked done but before compaction re-applies none of them."""
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for n in range(4):
        await journal.append({"n": n})
    done = path.with_name(path.name + ".done")
    done.write_text("".join(record["seq"] + "\n" for record in journal.records()[:2]) + "0000-torn")
    assert payloads(Journal(path).records()) == [2, 3]
    seen: list[int] = []

    async def apply(record: dict[str, Any]) -> None:
        seen.append(record["n"])

    assert await Journal(path).replay(apply) == 2
    assert seen == [2, 3]


async def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    await journal.append({"n": 1})
    with path.open("ab") as handle:
        handle.write(b'{"seq":"99","n":2,"memo":"cut sh')
    assert payloads(journal.records()) == [1]
    await journal.append({"n": 3})
    assert payloads(journal.records()) == [1, 3]
    assert b"cut sh" not in path.read_bytes()


async def test_a_corrupt_line_before_the_end_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    await journal.append({"n": 1})
    with path.open("ab") as handle:
        handle.write(b"this is not json\n")
    await journal.append({"n": 3})
    with pytest.raises(JournalError, match=rf"{path}: line 2"):
        journal.records()
    with path.open("ab") as handle:
        handle.write(b"[1, 2]\n")
    with pytest.raises(JournalError):
        len(journal)


async def test_appends_during_a_replay_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    await journal.append({"n": 0})
    seen: list[int] = []

    async def apply(record: dict[str, Any]) -> None:
        seen.append(record["n"])
        if record["n"] < 3:
            await journal.append({"n": record["n"] + 1})

    assert await journal.replay(apply) == 4
    assert seen == [0, 1, 2, 3] and len(journal) == 0


async def test_concurrent_replays_apply_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    for n in range(20):
        await Journal(path).append({"n": n})
    applications: Counter[int] = Counter()

    async def apply(record: dict[str, Any]) -> None:
        await asyncio.sleep(0.001)
        applications[record["n"]] += 1

    counts = await asyncio.gather(Journal(path).replay(apply), Journal(path).replay(apply))
    assert sorted(counts) == [0, 20]
    assert applications == Counter(range(20))


PROCESSES = 4
APPENDS_EACH = 100
PADDING = "x" * 20_000


def _appender(path: str, worker: int, start: Event) -> None:
    async def run() -> None:
        journal = Journal(Path(path))
        for i in range(APPENDS_EACH):
            await journal.append({"worker": worker, "i": i, "padding": PADDING})

    start.wait()
    asyncio.run(run())


def test_concurrent_appends_from_processes_are_whole_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_appender, args=(str(path), n, start)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=90)
        assert worker.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) == PROCESSES * APPENDS_EACH
    assert all(record["padding"] == PADDING for record in records)
    assert len({record["seq"] for record in records}) == len(records)
    for n in range(PROCESSES):
        assert [r["i"] for r in records if r["worker"] == n] == list(range(APPENDS_EACH))
    assert len(Journal(path).records()) == PROCESSES * APPENDS_EACH
