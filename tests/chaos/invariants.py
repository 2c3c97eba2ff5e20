"""The ledger invariant every chaos scenario ends with, and the plaintext-secret scan.

Truth on one side is the simulator's ledger (what money actually moved), on
the other tipsplit's tables (what it believes it did). They must agree:

* every paid POS invoice: each non-skipped leg either `succeeded`, and then
  exactly one simulator payment with the leg's `dest_payment_hash` moved
  exactly the leg's amount from the POS wallet to the right wallet; or it is
  `failed` with its error recorded, and the payment says `failed`;
* no other money left the POS wallet (sum of its outgoing payments == sum of
  succeeded legs; nothing still in flight);
* every payment has a complete event history (created ... completed / failed /
  expired) and none is left `processing`;
* an unpaid invoice moved nothing and ended `pending` or `expired`;
* the simulator's own audit (`violations`) is empty.
"""

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tests.chaos.cluster import Cluster
from tipsplit.store.redis_client import connect_redis

FINAL = {"completed", "failed"}


@dataclass
class Report:
    """What one scenario did, for the assertion messages and for README.md."""

    scenario: str
    created: int = 0
    paid: int = 0
    completed: int = 0
    failed_payments: int = 0
    failed_legs: int = 0
    expired: int = 0
    duplicates: int = 0
    lost: int = 0
    drain_seconds: float = 0.0
    faults: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (f"[chaos] {self.scenario}: created={self.created} paid={self.paid} completed={self.completed} "
                f"failed_payments={self.failed_payments} failed_legs={self.failed_legs} expired={self.expired} "
                f"duplicates={self.duplicates} lost={self.lost} drain={self.drain_seconds:.1f}s "
                f"faults=[{self.faults}] {extra}")


async def _rows(cluster: Cluster) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    conn = await asyncpg.connect(cluster.database_url)
    try:
        payments = await conn.fetch("SELECT * FROM payment_splits")
        legs = await conn.fetch("SELECT * FROM payment_legs ORDER BY payment_hash, leg")
        events = await conn.fetch("SELECT payment_hash, event_type FROM payment_events ORDER BY id")
    finally:
        await conn.close()
    return payments, legs, events


async def redis_up_on_every_instance(cluster: Cluster, timeout: float = 60.0) -> float:
    """Seconds until every instance's health says Redis is up again, none of them having restarted to get there."""
    t0 = time.monotonic()
    for inst in cluster.instances:
        while True:
            body = (await cluster.client.get(f"{inst.url}/api/health")).json()
            if body["checks"]["redis"]["status"] == "up":
                break
            assert time.monotonic() - t0 < timeout, body
            await asyncio.sleep(0.2)
        assert inst.starts == 1
    return round(time.monotonic() - t0, 2)


async def drain(cluster: Cluster, timeout: float) -> float:
    """Wait until every paid POS invoice is completed or failed and nothing is `processing`; seconds taken."""
    started = time.monotonic()
    last: Any = None
    while True:
        ledger = await cluster.ledger()
        paid = {i["paymentHash"] for i in ledger["invoices"]
                if i["walletId"] == cluster.pos.wallet_id and i["status"] == "PAID"}
        payments, _, _ = await _rows(cluster)
        open_ = [(p["payment_hash"][:8], p["status"]) for p in payments
                 if p["status"] == "processing" or (p["payment_hash"] in paid and p["status"] not in FINAL)]
        if not open_ and ledger["totals"]["inFlight"] == 0:
            return time.monotonic() - started
        last = open_[:10]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not drained in {timeout}s: {len(open_)} open, e.g. {last}")
        await asyncio.sleep(0.25)


async def check_ledger(cluster: Cluster, report: Report) -> Report:
    """Assert the invariant (see the module docstring) and fill `report` with what was found."""
    ledger = await cluster.ledger()
    payments, legs, events = await _rows(cluster)
    pos_wallet = cluster.pos.wallet_id
    wallets = {a.username: a.wallet_id for a in (cluster.merchant, *cluster.recipients.values())}
    problems: list[str] = list(ledger["violations"])

    pos_invoices = {i["paymentHash"]: i for i in ledger["invoices"] if i["walletId"] == pos_wallet}
    sim_payments = [p for p in ledger["payments"] if p["status"] == "SUCCESS"]
    by_hash = Counter(p["paymentHash"] for p in sim_payments)
    out_of_pos = [p for p in ledger["payments"] if p["senderWalletId"] == pos_wallet]
    legs_of: dict[str, list[asyncpg.Record]] = {}
    for leg in legs:
        legs_of.setdefault(leg["payment_hash"], []).append(leg)
    history: dict[str, list[str]] = {}
    for event in events:
        history.setdefault(event["payment_hash"], []).append(event["event_type"])
    stored = {p["payment_hash"]: p for p in payments}

    # A POS invoice that was paid but that tipsplit does not know: the money would stay on the POS account.
    for ph, invoice in pos_invoices.items():
        if invoice["status"] == "PAID" and ph not in stored:
            report.lost += 1
            problems.append(f"paid POS invoice {ph[:12]} unknown to tipsplit")

    succeeded_hashes: set[str] = set()
    for payment in payments:
        ph, status = payment["payment_hash"], payment["status"]
        invoice = pos_invoices.get(ph)
        its_legs = legs_of.get(ph, [])
        types = history.get(ph, [])
        report.created += 1
        if not types or types[0] != "created":
            problems.append(f"{ph[:12]}: history does not start with 'created': {types[:3]}")
        if sum(leg["amount"] for leg in its_legs) != payment["total_amount"]:
            problems.append(f"{ph[:12]}: legs do not add up to the invoice")
        if invoice is not None and invoice["amount"] != payment["total_amount"]:
            problems.append(f"{ph[:12]}: POS invoice amount {invoice['amount']} != stored {payment['total_amount']}")
        if status == "processing":
            problems.append(f"{ph[:12]}: still processing")
        if invoice is not None and invoice["status"] == "PAID":
            report.paid += 1
            if status == "completed":
                report.completed += 1
                if "completed" not in types:
                    problems.append(f"{ph[:12]}: completed without a 'completed' event")
                bad = [leg["leg"] for leg in its_legs if leg["status"] not in ("succeeded", "skipped")]
                if bad:
                    problems.append(f"{ph[:12]}: completed with legs {bad} not succeeded")
            elif status == "failed":
                report.failed_payments += 1
                if "failed" not in types:
                    problems.append(f"{ph[:12]}: failed without a 'failed' event")
                if not payment["error_message"]:
                    problems.append(f"{ph[:12]}: failed with no error recorded")
            else:
                report.lost += 1
                problems.append(f"{ph[:12]}: paid but {status}")
            for leg in its_legs:
                if leg["status"] == "succeeded":
                    dest = leg["dest_payment_hash"]
                    succeeded_hashes.add(dest)
                    moved = [p for p in sim_payments if p["paymentHash"] == dest]
                    expected_wallet = leg["destination_wallet_id"] or wallets.get(leg["destination_username"])
                    if leg["leg"] == "base":
                        expected_wallet = payment["user_wallet_id"]
                    if len(moved) != 1:
                        problems.append(f"{ph[:12]} {leg['leg']}: {len(moved)} payments of its invoice")
                        report.lost += len(moved) == 0
                    elif (moved[0]["amount"], moved[0]["recipientWalletId"], moved[0]["senderWalletId"]) != (
                            leg["amount"], expected_wallet, pos_wallet):
                        problems.append(f"{ph[:12]} {leg['leg']}: moved {moved[0]} for {leg['amount']}")
                elif leg["status"] == "failed":
                    report.failed_legs += 1
                    if not leg["last_error"]:
                        problems.append(f"{ph[:12]} {leg['leg']}: failed with no error")
                    if status != "failed":
                        problems.append(f"{ph[:12]} {leg['leg']}: failed leg in a {status} payment")
                elif leg["status"] != "skipped":
                    problems.append(f"{ph[:12]} {leg['leg']}: ended {leg['status']}")
        else:
            if status == "expired":
                report.expired += 1
                if "expired" not in types:
                    problems.append(f"{ph[:12]}: expired without an 'expired' event")
            elif status not in ("pending",):
                problems.append(f"{ph[:12]}: unpaid invoice is {status}")
            moved_legs = [leg["leg"] for leg in its_legs if leg["status"] in ("succeeded", "paying")]
            if moved_legs:
                problems.append(f"{ph[:12]}: unpaid invoice has legs {moved_legs} paid")

    # Nothing else moved: every payment out of the POS wallet is one succeeded leg, once.
    for p in out_of_pos:
        if p["paymentHash"] not in succeeded_hashes:
            report.duplicates += 1
            problems.append(f"POS paid {p['amount']} sats for invoice {p['paymentHash'][:12]} that is no succeeded leg")
    report.duplicates += sum(n - 1 for h, n in by_hash.items() if n > 1)
    paid_out = sum(p["amount"] for p in out_of_pos if p["status"] == "SUCCESS")
    succeeded = sum(leg["amount"] for leg in legs if leg["status"] == "succeeded")
    if paid_out != succeeded:
        problems.append(f"POS paid out {paid_out} sats, succeeded legs total {succeeded}")
    if ledger["totals"]["inFlight"]:
        problems.append(f"{ledger['totals']['inFlight']} sats still in flight")
    balances = {w["walletId"]: w["balance"] for w in ledger["wallets"]}
    for username, wallet_id in wallets.items():
        owed = sum(leg["amount"] for leg in legs if leg["status"] == "succeeded" and (
            (leg["leg"] == "base" and stored[leg["payment_hash"]]["user_wallet_id"] == wallet_id)
            or (leg["leg"] != "base" and leg["destination_username"] == username)))
        if balances.get(wallet_id) != owed:
            problems.append(f"{username} holds {balances.get(wallet_id)} sats, succeeded legs owe {owed}")

    print(report.line())
    assert not problems, f"{len(problems)} ledger problem(s):\n" + "\n".join(problems[:40])
    assert report.duplicates == 0 and report.lost == 0
    return report


async def scan_for_secrets(cluster: Cluster, extra_files: list[Path] | None = None) -> int:
    """Look for every test API key in plaintext in every table, every Redis key, the journal and the logs."""
    secrets = [s for s in cluster.api_keys() if s]
    hits: list[str] = []
    conn = await asyncpg.connect(cluster.database_url)
    try:
        tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
            for row in rows:
                hits += [f"table {table}" for s in secrets if s in row["row"]]
    finally:
        await conn.close()
    client = connect_redis(cluster.redis_url)
    redis_keys = 0
    try:
        async for key in client.scan_iter(match=f"{cluster.prefix}*", count=1000):
            redis_keys += 1
            value = await _redis_value(client, key)
            hits += [f"redis {key!r}" for s in secrets if s.encode() in key + value]
    finally:
        await client.aclose()
    files = [*cluster.logs(), *(extra_files or [])]
    for inst in cluster.instances:
        files += [p for p in inst.data_dir.rglob("*") if p.is_file()]
    for path in files:
        if path.exists():
            data = path.read_bytes()
            hits += [f"file {path.name}" for s in secrets if s.encode() in data]
    assert not hits, f"plaintext API keys found: {hits[:20]}"
    assert len(tables) >= 5
    return redis_keys


async def _redis_value(client: aioredis.Redis, key: bytes) -> bytes:
    kind = (await client.type(key)).decode()
    if kind == "string":
        return await client.get(key) or b""
    if kind == "hash":
        return json.dumps({k.decode(errors="replace"): v.decode(errors="replace")
                           for k, v in (await client.hgetall(key)).items()}).encode()
    if kind == "list":
        return b"\n".join(await client.lrange(key, 0, -1))
    if kind == "set":
        return b"\n".join(await client.smembers(key))
    if kind == "zset":
        return b"\n".join(m for m, _ in await client.zrange(key, 0, -1, withscores=True))
    if kind == "stream":
        return repr(await client.xrange(key)).encode()
    return b""
