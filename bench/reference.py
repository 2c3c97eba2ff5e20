"""Fixed reference workloads, timed in the same run as the service: what a millisecond is worth on this machine.

CPU per payment moves with the machine (a shared 2-core VM runs the same code at a third of another
one's speed), so section 3 divides it by two workloads that never change:

- a fixed pure-Python loop (integer arithmetic, a dict and a list, no I/O), the yardstick for the
  service's and the simulator's CPU, both pure-Python processes;
- a fixed pgbench run (select-only TPC-B, scale 1, one client, `-M prepared`, a fixed number of
  transactions, the best of three), the yardstick for the CPU of the PostgreSQL backends that serve the
  service.

Each is timed before and after section 3 and the mean taken, so a machine that got busier in
between shows as two different times.
"""

import re
import shutil
import statistics
import subprocess
import time
from typing import Any

from bench.common import ratio

PYTHON_LOOP_ITERATIONS = 1_000_000
PGBENCH_SCALE = 1
PGBENCH_TRANSACTIONS = 20_000


def python_loop() -> float:
    """CPU milliseconds for the fixed loop, the best of three (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        table: dict[int, int] = {}
        seen: list[int] = []
        total = 0
        for i in range(PYTHON_LOOP_ITERATIONS):
            total = (total + i * i) % 1_000_003
            table[i & 1023] = total
            if i & 4095 == 0:
                seen.append(total)
        best = min(best, (time.process_time() - started) * 1000)
    return round(best, 2)


def pgbench_prepare(url: str) -> dict[str, Any] | None:
    """Create pgbench's tables at scale 1 in `url`'s database and warm them; None when that went well."""
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed"}
    done = subprocess.run(["pgbench", "-i", "-q", "-s", str(PGBENCH_SCALE), url], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout)[-500:]}
    warm = pgbench_run(url, tries=1)
    return {"error": warm["error"]} if "error" in warm else None


def pgbench_run(url: str, tries: int = 3) -> dict[str, Any]:
    """Wall milliseconds for the fixed select-only pgbench run, the best of `tries` (one client: each
    transaction is a round trip, so on a shared machine a single run's time swings with the scheduler)."""
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed"}
    walls: list[float] = []
    rates: list[float] = []
    for _ in range(tries):
        started = time.perf_counter()
        done = subprocess.run(["pgbench", "-n", "-S", "-M", "prepared", "-c", "1", "-j", "1",
                               "-t", str(PGBENCH_TRANSACTIONS), url], capture_output=True, text=True, timeout=600)
        walls.append(round((time.perf_counter() - started) * 1000, 1))
        tps = re.search(r"tps = ([0-9.]+)", done.stdout)
        if done.returncode != 0 or tps is None:
            return {"error": (done.stderr or done.stdout)[-500:]}
        rates.append(round(float(tps.group(1)), 1))
    return {"ms": min(walls), "tries_ms": walls, "tps": max(rates)}


def measure(url: str) -> dict[str, Any]:
    """Both reference workloads once (pgbench's tables must exist: `pgbench_prepare`)."""
    return {"python_loop_ms": python_loop(), "pgbench": pgbench_run(url)}


def summarize(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The two timings of each workload and their mean, which the ratios divide by."""
    loops = [before["python_loop_ms"], after["python_loop_ms"]]
    pg = [r["ms"] for r in (before["pgbench"], after["pgbench"]) if "ms" in r]
    return {
        "python_loop": {"iterations": PYTHON_LOOP_ITERATIONS, "ms": loops, "mean_ms": round(statistics.fmean(loops), 2)},
        "pgbench": {"command": f"pgbench -n -S -M prepared -c 1 -t {PGBENCH_TRANSACTIONS} (scale {PGBENCH_SCALE}, best of 3)",
                    "ms": pg, "mean_ms": round(statistics.fmean(pg), 1) if pg else None,
                    "runs": [before["pgbench"], after["pgbench"]]},
    }


def cpu_ratios(cpu_ms_per_payment: dict[str, float], reference: dict[str, Any]) -> dict[str, float | None]:
    """CPU per payment as a fraction of each reference workload's time in the same run."""
    loop = reference["python_loop"]["mean_ms"]
    pg = reference["pgbench"]["mean_ms"]
    return {
        "service_over_python_loop": ratio(cpu_ms_per_payment.get("service"), loop, 4),
        "simulator_over_python_loop": ratio(cpu_ms_per_payment.get("simulator"), loop, 4),
        "postgres_over_pgbench": ratio(cpu_ms_per_payment.get("postgres"), pg, 4),
    }
