"""The machine's limit for a lifecycle: its SQL through pgbench, its Redis commands through redis-benchmark.

PGBENCH_LIFECYCLE is the statement sequence HybridTipStore sends to PostgreSQL
for one store → lock → get (Redis hit) → archive (failed) and unlock lifecycle
(cold.py: insert_payment, then fail_unclaimed returning the recipients: two
single-statement transactions), with no Python in between. One pgbench "transaction" is one
whole lifecycle, so pgbench's tps is directly comparable with lifecycles/s.
"""

import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

from tipsplit.store.payments import RECIPIENT_USERNAMES

H = "encode(sha256(convert_to((:a)::text || '-' || (:client_id)::text, 'UTF8')), 'hex')"

PGBENCH_LIFECYCLE = f"""
\\set a random(1, 9000000000000000000)
WITH payment AS (INSERT INTO payment_splits (payment_hash, user_wallet_id, user_api_key_encrypted, username, total_amount, base_amount, tip_amount, tip_percent, display_currency, base_amount_display, tip_amount_display, tip_recipient, status, memo, invoice_satoshis, payment_request, expires_at, created_at) VALUES ({H}, 'merchant-wallet-1', :apikey, NULL, 11500, 10000, 1500, 15, 'USD', 10, 1.5, 'alice', 'pending', 'table 4', 11500, NULL, now() + interval '1 day', COALESCE(NULL, now())) ON CONFLICT (payment_hash) DO NOTHING RETURNING payment_hash, created_at), recipients AS (INSERT INTO payment_tip_recipients (payment_hash, position, username, share) SELECT p.payment_hash, r.* FROM payment p, unnest('{{1}}'::int[], '{{alice}}'::text[], '{{100}}'::numeric[]) AS r), legs AS (INSERT INTO payment_legs (payment_hash, leg, destination_username, destination_wallet_id, amount, share, memo, status, completed_at) SELECT p.payment_hash, l.leg, l.username, l.wallet, l.amount, l.share, l.memo, l.status, CASE WHEN l.status = 'skipped' THEN now() END FROM payment p, unnest(:legs::text[], '{{NULL,alice}}'::text[], '{{merchant-wallet-1,NULL}}'::text[], '{{10000,1500}}'::bigint[], '{{NULL,100}}'::numeric[], '{{"forward memo","tip memo"}}'::text[], '{{pending,pending}}'::text[]) AS l(leg, username, wallet, amount, share, memo, status)), event AS (INSERT INTO payment_events (payment_hash, event_type, event_data) SELECT p.payment_hash, 'created', :created::jsonb FROM payment p) SELECT created_at FROM payment;
WITH before AS (SELECT status, claim_owner FROM payment_splits WHERE payment_hash = {H} FOR UPDATE), failed AS (UPDATE payment_splits SET status = 'failed', error_message = 'bench archive', processed_at = now(), updated_at = now(), claim_owner = NULL, claim_expires_at = NULL, settle_attempts = settle_attempts + 1, next_attempt_at = now() + make_interval(secs => ('{{2,4,8,16,32}}'::float8[])[settle_attempts + 1]) FROM before WHERE payment_hash = {H} AND (payment_splits.status IN ('pending', 'expired', 'failed') OR (payment_splits.status = 'processing' AND claim_expires_at < now())) RETURNING payment_hash, settle_attempts, next_attempt_at, before.status AS previous_status, before.claim_owner AS previous_owner, {RECIPIENT_USERNAMES}), event AS (INSERT INTO payment_events (payment_hash, event_type, event_data) SELECT payment_hash, 'failed', jsonb_build_object('owner', 'remove-0123456789ab'::text, 'error', 'bench archive'::text, 'attempts', settle_attempts, 'nextAttemptAt', next_attempt_at, 'previousStatus', previous_status, 'previousOwner', previous_owner) FROM failed) SELECT recipients FROM failed;
"""

# Literals holding a colon are pgbench variables (-D), bound as parameters in prepared mode.
PGBENCH_VARIABLES = {
    "apikey": "enc:v1:b1:" + "A" * 64,
    "legs": "{base,tip:1}",
    "created": '{"totalAmount":11500,"baseAmount":10000,"tipAmount":1500,"tipRecipients":["alice"],'
               '"legs":[{"leg":"base","amount":10000,"skipped":false},{"leg":"tip:1","amount":1500,"skipped":false}],'
               '"expiresAt":"2026-01-01T00:00:00+00:00"}',
}

STATEMENTS_PER_LIFECYCLE = sum(1 for line in PGBENCH_LIFECYCLE.splitlines() if line.strip().endswith(";"))


def pgbench(url: str, script_path: str, clients: list[int], seconds: int) -> dict[str, Any]:
    """pgbench -M prepared on the lifecycle script at each client count; the best tps is the limit."""
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed"}
    runs: dict[str, Any] = {}
    for count in clients:
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(count), "-j", str(min(count, 2)),
                   "-T", str(seconds), "-f", script_path, url]
        for name, value in PGBENCH_VARIABLES.items():
            command[1:1] = ["-D", f"{name}={value}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 60)
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
        latency = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
        if done.returncode != 0 or match is None:
            runs[str(count)] = {"error": (done.stderr or done.stdout)[-500:]}
            continue
        runs[str(count)] = {
            "tps": round(float(match.group(1)), 1),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "failed": int(failed.group(1)) if failed else 0,
        }
    best = max((r["tps"] for r in runs.values() if "tps" in r), default=None)
    return {"statements_per_lifecycle": STATEMENTS_PER_LIFECYCLE, "seconds_each": seconds, "clients": runs,
            "best_tps": best}


REDIS_COMMANDS = {
    # command → how many times a lifecycle sends it (store SET, lock SET NX; get; archive: one script that
    # deletes the cache and stats keys and releases the lock, counted as one DEL)
    "SET": 2,
    "GET": 1,
    "DEL": 1,
}


def redis_benchmark(redis_url: str, prefix: str, clients: int, requests: int) -> dict[str, Any]:
    """redis-benchmark on the lifecycle's commands; the lifecycle-equivalent rate is their weighted harmonic sum."""
    if shutil.which("redis-benchmark") is None:
        return {"skipped": "redis-benchmark is not installed"}
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", str(parts.port or 6379)
    value = "x" * 600  # about the size of a cached tip view
    key = f"{prefix}rb:__rand_int__"
    commands = {
        "SET": ["SET", key, value, "PX", "86400000"],
        "GET": ["GET", key],
        "DEL": ["DEL", key],
    }
    rates: dict[str, float] = {}
    for name, args in commands.items():
        command = ["redis-benchmark", "-h", host, "-p", port, "-c", str(clients), "-n", str(requests),
                   "-r", "100000", "-q", "--csv", *args]
        if parts.password:
            command[1:1] = ["-a", parts.password]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        numbers = re.findall(r'"([0-9.]+)"', done.stdout.splitlines()[-1] if done.stdout else "")
        if done.returncode != 0 or not numbers:
            return {"error": (done.stderr or done.stdout)[-500:]}
        rates[name] = float(numbers[0])
    per_lifecycle = 1 / sum(REDIS_COMMANDS[name] / rate for name, rate in rates.items())
    return {"clients": clients, "requests_each": requests, "ops_per_second": rates,
            "commands_per_lifecycle": REDIS_COMMANDS, "lifecycles_per_second": round(per_lifecycle, 1)}
