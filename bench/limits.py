"""The machine's limit for a lifecycle: its SQL through pgbench, its Redis commands through redis-benchmark.

PGBENCH_LIFECYCLE is the statement sequence HybridTipStore sends to PostgreSQL
for one store → lock → get (Redis hit) → archive (failed) and unlock lifecycle
(store/payments.py's INSERT_PAYMENTS for one sale, then store/outcomes.py's FAIL_UNCLAIMED returning the
recipients: two single-statement transactions), with no Python in between. One pgbench "transaction" is one
whole lifecycle, so pgbench's tps is directly comparable with lifecycles/s.
"""

import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

from tipsplit.store.outcomes import FAIL_UNCLAIMED
from tipsplit.store.payments import INSERT_PAYMENTS

H = "encode(sha256(convert_to((:a)::text || '-' || (:client_id)::text, 'UTF8')), 'hex')"

# The arguments of one sale for payments.py's INSERT_PAYMENTS, as SQL: the pgbench script sends that very statement.
INSERT_ARGUMENTS = {
    1: f"ARRAY[{H}]", 2: "'{merchant-wallet-1}'", 3: "ARRAY[(:apikey)::text]", 4: "'{NULL}'", 5: "'{11500}'",
    6: "'{10000}'", 7: "'{1500}'", 8: "'{15}'", 9: "'{USD}'", 10: "'{10}'", 11: "'{1.5}'", 12: "'{alice}'",
    13: "'{\"table 4\"}'", 14: "'{NULL}'", 15: "ARRAY[now() + interval '1 day']", 16: "'{NULL}'", 17: "'{NULL}'",
    18: "'pending'", 19: f"ARRAY[{H}]", 20: "'{1}'", 21: "'{alice}'", 22: "'{100}'", 23: f"ARRAY[{H}, {H}]",
    24: ":legs", 25: "'{NULL,alice}'", 26: "'{merchant-wallet-1,NULL}'", 27: "'{BTC,BTC}'", 28: "'{10000,1500}'",
    29: "'{NULL,100}'", 30: "'{\"forward memo\",\"tip memo\"}'", 31: "'{pending,pending}'", 32: "'skipped'",
    33: f"ARRAY[{H}]", 34: "ARRAY[(:created)::jsonb]",
}

# What `remove_tip_data` of a payment nobody holds passes to outcomes.py's FAIL_UNCLAIMED (the default retry policy).
FAIL_ARGUMENTS = {
    1: H, 2: "'remove-0123456789ab'", 3: "'bench archive'", 4: "'{2,4,8,16,32}'", 5: "'failed'",
    6: "'{expired,failed,pending}'", 7: "'{processing}'",
}


def _one_line(statement: str, arguments: dict[int, str]) -> str:
    """A store statement with its $n parameters replaced by SQL, on one line as a pgbench script wants it."""
    return " ".join(re.sub(r"\$(\d+)", lambda m: arguments[int(m.group(1))], statement).split()) + ";"


PGBENCH_LIFECYCLE = f"""
\\set a random(1, 9000000000000000000)
{_one_line(INSERT_PAYMENTS, INSERT_ARGUMENTS)}
{_one_line(FAIL_UNCLAIMED, FAIL_ARGUMENTS)}
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
