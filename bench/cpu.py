"""Section 3's CPU per payment alone, beside the reference workloads: `python -m bench.cpu [--clients N] [--payments N]`.

For comparing two versions of the code on a busy machine in minutes rather than the full run's quarter
hour: the service, its PostgreSQL backends and the simulator, each in CPU ms per payment and as a
ratio to the fixed workloads of `bench.reference` timed just before and after. With
`--latency-payments N`, also payment→forwarded with every Blink call `--latency-ms` late.
"""

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench import e2e, reference
from bench.common import emit, Servers, loadavg
from tipsplit.store.schema import apply_migrations


async def measure(clients: int, payments: int, latency_ms: int, latency_payments: int) -> dict[str, Any]:
    servers = Servers.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="tipsplit-bench-cpu-"))
    results: dict[str, Any] = {"loadavg_at_start": loadavg()}
    try:
        reference_url = servers.database("reference")
        setup = reference.pgbench_prepare(reference_url)
        url = servers.database("cpu")
        apply_migrations(url)
        async with e2e.stack(servers, url, scratch) as world:
            await e2e.drive(world, 8, 40)
            before = await asyncio.to_thread(reference.measure, reference_url)
            run = await e2e.drive(world, clients, payments)
            after = await asyncio.to_thread(reference.measure, reference_url)
            results["reference"] = reference.summarize(before, after)
            if setup:
                results["reference"]["pgbench"]["setup"] = setup
            run["cpu_over_reference"] = reference.cpu_ratios(run["cpu_ms_per_payment"], results["reference"])
            results["e2e"] = run
            if latency_payments:
                results["blink_latency"] = await e2e.latency_section(world, latency_ms, 1, latency_payments)
    finally:
        await servers.cleanup()
    results["loadavg_at_end"] = loadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--payments", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--latency-payments", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the JSON here (default: standard output)")
    args = parser.parse_args()
    import uvloop

    emit(uvloop.run(measure(args.clients, args.payments, args.latency_ms, args.latency_payments)), args.out)


if __name__ == "__main__":
    main()
