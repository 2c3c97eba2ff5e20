"""Section 2's lifecycle alone, beside the reference workloads: `python -m bench.lifecycle [--rounds 3]`.

tipsplit against the seed-literal port at 1 and 64 tasks, alternating, in one run; for comparing two
versions of the store in a couple of minutes (the other one with `PYTHONPATH=<its src>`). The
tipsplit ÷ seed ratios are what to compare between runs; the reference workloads say how busy the
machine was.
"""

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bench import reference, storage
from bench.common import emit, Servers, loadavg, ratio
from tipsplit.store.schema import apply_migrations


async def measure(counts: dict[int, int], rounds: int, warmup: int) -> dict[str, Any]:
    servers = Servers.resolve()
    results: dict[str, Any] = {"loadavg_at_start": loadavg()}
    try:
        reference_url = servers.database("reference")
        reference.pgbench_prepare(reference_url)
        url = servers.database("life")
        apply_migrations(url)
        before = await asyncio.to_thread(reference.measure, reference_url)
        life = await storage.lifecycle_pair(servers, url, counts, warmup=warmup, rounds=rounds)
        after = await asyncio.to_thread(reference.measure, reference_url)
        results["reference"] = reference.summarize(before, after)
        life["ratios"] = {
            f"tipsplit_over_seed_{conc}": ratio(life["tipsplit"][conc]["per_second"],
                                               life["seed_literal"][conc]["per_second"])
            for conc in life["tipsplit"]
        }
        results["lifecycle"] = life
    finally:
        await servers.cleanup()
    results["loadavg_at_end"] = loadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--single", type=int, default=200, help="lifecycles per round at 1 task")
    parser.add_argument("--many", type=int, default=2000, help="lifecycles per round at 64 tasks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--out", type=Path, help="write the JSON here (default: standard output)")
    args = parser.parse_args()
    import uvloop

    emit(uvloop.run(measure({1: args.single, 64: args.many}, args.rounds, args.warmup)), args.out)


if __name__ == "__main__":
    main()
