"""Run the benchmark: `python -m bench.run --form full|smoke|tiny [--out DIR]` (see bench/README.md).

Every figure is measured in the same run as its baselines. Databases are
created as tipsplit_bench_<label>_<random> on the shared server and dropped at
the end; Redis keys live under tsbench:<random>: and are deleted; nothing else
on the servers is touched.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import e2e, hotpath, limits, reference, report, storage
from bench.common import ROOT, Servers, loadavg, machine, ratio
from tipsplit.store.schema import apply_migrations


@dataclass(frozen=True)
class Plan:
    latency_sizes: list[int]
    latency_ops: int
    file_ops: dict[int, int]
    lifecycle: dict[int, int]
    pgbench_clients: list[int]
    pgbench_seconds: int
    redis_requests: int
    scale_rows: int
    e2e: dict[int, int]
    memory_payments: int
    stats_calls: int
    warmup: int = 100
    lifecycle_rounds: int = 1
    hot_polls: int = 1_000
    hot_streams: int = 1_000
    hot_window_seconds: float = 10.0
    latency_payments: int = 50
    blink_latency_ms: int = 100


PLANS = {
    "full": Plan([1_000, 100_000], 1_000, {1_000: 200, 100_000: 10}, {1: 1_000, 64: 6_400}, [8, 16, 32], 15,
                 100_000, 1_000_000, {1: 200, 16: 1_000, 64: 2_000}, 100_000, 50, lifecycle_rounds=3),
    "smoke": Plan([100, 2_000], 100, {100: 50, 2_000: 20}, {1: 150, 64: 640}, [8, 16, 32], 3, 20_000, 20_000,
                  {1: 20, 16: 48, 64: 128}, 100, 10, warmup=50, hot_polls=200, hot_streams=200,
                  hot_window_seconds=3.0, latency_payments=10),
    "tiny": Plan([20], 10, {20: 5}, {1: 10, 64: 64}, [8], 1, 2_000, 500, {1: 3, 4: 8}, 8, 3, warmup=10, hot_polls=20,
                 hot_streams=20, hot_window_seconds=1.0, latency_payments=2),
}


def lifecycle_ratios(life: dict[str, Any]) -> dict[str, float | None]:
    best = life.get("limit", {}).get("pgbench", {}).get("best_tps")
    out: dict[str, float | None] = {}
    for conc, ours in life["tipsplit"].items():
        seed = life.get("seed_literal", {}).get(conc, {}).get("per_second")
        out[f"tipsplit_over_seed_{conc}"] = ratio(ours["per_second"], seed)
        out[f"tipsplit_over_pgbench_{conc}"] = ratio(ours["per_second"], best, 3)
    return out


async def run(form: str, out_dir: Path, *, with_chart: bool, readme: Path | None, command: str,
              memory_payments: int | None = None) -> dict[str, Any]:
    plan = PLANS[form]
    if memory_payments is not None:
        plan = Plan(**{**asdict(plan), "memory_payments": memory_payments})
    servers = Servers.resolve()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "form": form,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine(),
        "plan": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k, v in asdict(plan).items()},
        "notes": [],
    }

    def step(name: str) -> None:
        print(f"[bench {form}] {name} ({time.perf_counter() - started:.0f}s, load {loadavg()})", file=sys.stderr,
              flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="tipsplit-bench-"))
    try:
        step("1. latency")
        results["latency"] = await storage.latency_section(servers, plan.latency_sizes, plan.latency_ops,
                                                           plan.file_ops)
        step("2. lifecycle: tipsplit and seed-literal")
        url = servers.database("life")
        apply_migrations(url)
        life = await storage.lifecycle_pair(servers, url, plan.lifecycle, warmup=plan.warmup,
                                            rounds=plan.lifecycle_rounds)
        step("2. lifecycle: limits (pgbench, redis-benchmark)")
        limit_url = servers.database("limit")
        apply_migrations(limit_url)
        script = scratch / "lifecycle.sql"
        script.write_text(limits.PGBENCH_LIFECYCLE)
        life["limit"] = {
            "pgbench": limits.pgbench(limit_url, str(script), plan.pgbench_clients, plan.pgbench_seconds),
            "redis_benchmark": limits.redis_benchmark(servers.redis_url, servers.prefix, 32, plan.redis_requests),
        }
        servers.drop(limit_url)
        await servers.forget_keys()
        life["ratios"] = lifecycle_ratios(life)
        results["lifecycle"] = life
        step(f"4. scale: bulk load {plan.scale_rows:,} rows")
        big_url = servers.database("scale")
        apply_migrations(big_url)
        load_seconds = storage.bulk_load(big_url, plan.scale_rows)
        step("4. scale: lifecycle")
        at_scale = await storage.lifecycle_pair(servers, big_url, plan.lifecycle, seed=False, warmup=plan.warmup,
                                                rounds=plan.lifecycle_rounds)
        scale: dict[str, Any] = {"rows": plan.scale_rows, "bulk_load_seconds": load_seconds, "lifecycle": at_scale}
        scale["ratios"] = {
            f"lifecycle_{conc}_at_scale_over_empty": ratio(at_scale["tipsplit"][conc]["per_second"],
                                                          life["tipsplit"][conc]["per_second"])
            for conc in at_scale["tipsplit"]
        }
        results["scale"] = scale
        reference_url = servers.database("reference")
        pgbench_setup = reference.pgbench_prepare(reference_url)
        e2e_url = servers.database("e2e")
        apply_migrations(e2e_url)
        async with e2e.stack(servers, e2e_url, scratch / "e2e") as world:
            # First, while the POS account's invoice budget is untouched (it makes a few sales of its own).
            step("6. hot read path: status polls and idle streams")
            results["hot_path"] = await hotpath.hot_path_section(world, servers, scratch / "e2e", plan.hot_polls,
                                                                 plan.hot_streams, plan.hot_window_seconds)
            step("3. reference workloads, end to end, reference workloads again")
            before = await asyncio.to_thread(reference.measure, reference_url)
            results["e2e"] = await e2e.e2e_section(world, plan.e2e)
            after = await asyncio.to_thread(reference.measure, reference_url)
            results["reference"] = reference.summarize(before, after)
            if pgbench_setup:
                results["reference"]["pgbench"]["setup"] = pgbench_setup
            for row in results["e2e"].values():
                row["cpu_over_reference"] = reference.cpu_ratios(row["cpu_ms_per_payment"], results["reference"])
            step(f"3. payment→forwarded with {plan.blink_latency_ms} ms Blink latency")
            results["blink_latency"] = await e2e.latency_section(world, plan.blink_latency_ms, 1,
                                                                 plan.latency_payments)
            step("5. memory")
            results["memory"] = await e2e.memory_section(world, plan.memory_payments)
            step("4. stats endpoint")
            small = await e2e.stats_latency(world.service.url, servers.redis_url, servers.prefix, plan.stats_calls)
            big = await e2e.stats_on(world, servers, big_url, scratch / "big", plan.stats_calls)
            scale["stats_endpoint"] = {"small": small, "scale": big}
            scale["ratios"]["stats_uncached_p50_at_scale_over_small"] = ratio(
                big["uncached"]["p50_ms"], small["uncached"]["p50_ms"])
    finally:
        await servers.cleanup()
    results["loadavg_at_end"] = loadavg()
    results["duration_seconds"] = round(time.perf_counter() - started)
    results["targets"] = report.targets(results)
    stem = datetime.now(UTC).strftime("%Y-%m-%d")
    if form != "full":
        stem = f"{form}-{stem}"
    paths = report.write(results, out_dir, stem, with_chart=with_chart, readme=readme)
    step("done: " + ", ".join(str(p) for p in paths.values()))
    return results


async def run_memory(out_dir: Path, payments: int, command: str) -> dict[str, Any]:
    """Section 5 alone (a long memory run without the other sections): writes <out>/<date>-memory.json."""
    servers = Servers.resolve()
    started = time.perf_counter()
    results: dict[str, Any] = {"form": "memory", "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                               "command": command, "machine": machine()}
    scratch = Path(tempfile.mkdtemp(prefix="tipsplit-bench-"))
    try:
        url = servers.database("memory")
        apply_migrations(url)
        async with e2e.stack(servers, url, scratch / "e2e") as world:
            await e2e.drive(world, 8, 40)
            results["memory"] = await e2e.memory_section(world, payments)
    finally:
        await servers.cleanup()
    results["loadavg_at_end"] = loadavg()
    results["duration_seconds"] = round(time.perf_counter() - started)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{datetime.now(UTC).strftime('%Y-%m-%d')}-memory.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"[bench memory] {results['memory']} → {path}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--form", choices=sorted(PLANS), default="smoke")
    parser.add_argument("--out", type=Path, help="results directory (full: bench/results; else a temp dir)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    parser.add_argument("--memory-payments", type=int, help="payments per memory round (default by form)")
    parser.add_argument("--memory-only", action="store_true",
                        help="run section 5 alone (with --memory-payments) and write <out>/<date>-memory.json")
    args = parser.parse_args()
    default_out = ROOT / "bench" / "results" if args.form == "full" else Path(tempfile.gettempdir()) / "tipsplit-bench"
    command = "python -m bench.run " + " ".join(sys.argv[1:])
    readme = ROOT / "bench" / "README.md" if args.update_readme else None
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.memory_only:
        payments = args.memory_payments or PLANS[args.form].memory_payments
        runner(run_memory(args.out or default_out, payments, command))
        return
    runner(run(args.form, args.out or default_out, with_chart=not args.no_chart, readme=readme, command=command,
               memory_payments=args.memory_payments))


if __name__ == "__main__":
    main()
