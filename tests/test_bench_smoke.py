"""The benchmark's smoke code path on tiny sizes: every section is measured and written, well formed.

Timings are never asserted (CI runs on a loaded 2-core machine); only the
shape of the results JSON and the Markdown table.
"""

import json
import shutil
from pathlib import Path

import pytest

from bench import run as bench_run

SECTIONS = ("machine", "latency", "lifecycle", "scale", "e2e", "reference", "blink_latency", "memory", "hot_path",
            "targets")


@pytest.mark.timeout(90)
def test_tiny_benchmark_writes_every_section(tmp_path: Path) -> None:
    import asyncio

    results = asyncio.run(
        bench_run.run("tiny", tmp_path, with_chart=False, readme=None, command="pytest tests/test_bench_smoke.py")
    )
    written = list(tmp_path.glob("tiny-*.json"))
    assert len(written) == 1
    data = json.loads(written[0].read_text())
    assert data == json.loads(json.dumps(results))
    for section in SECTIONS:
        assert section in data, section
    assert {"nproc", "cpu_model", "ram_gb"} <= set(data["machine"])
    for size in data["latency"].values():
        for name in ("hybrid_durable_store", "hybrid_get_redis_hit", "hybrid_get_redis_miss", "file_store", "file_get"):
            assert size[name]["n"] > 0 and {"p50_ms", "p99_ms"} <= set(size[name])
        assert set(size["ratios"]) == {
            "file_store_p50_over_hybrid_store_p50", "file_get_p50_over_hybrid_hit_p50", "file_get_p50_over_hybrid_miss_p50"
        }
    life = data["lifecycle"]
    assert set(life["tipsplit"]) == set(life["seed_literal"]) == {"1", "64"}
    for row in (*life["tipsplit"].values(), *life["seed_literal"].values()):
        assert row["operations"] > 0 and row["per_second"] > 0
        assert row["postgres_cpu_ms_per_op"] >= 0 and row["rounds_per_second"] == [row["per_second"]]
    assert {"pgbench", "redis_benchmark"} <= set(life["limit"])
    if shutil.which("pgbench"):
        assert life["limit"]["pgbench"]["best_tps"], life["limit"]["pgbench"]
    assert "tipsplit_over_seed_64" in life["ratios"] and "tipsplit_over_pgbench_64" in life["ratios"]
    scale = data["scale"]
    assert scale["rows"] > 0 and set(scale["lifecycle"]["tipsplit"]) == {"1", "64"}
    assert {"small", "scale"} <= set(scale["stats_endpoint"])
    for row in data["e2e"].values():
        assert row["settled"] == row["payments"] and row["errors"] == 0
        assert {"service", "simulator", "postgres"} <= set(row["cpu_ms_per_payment"]) and "simulator_cpu_share" in row
        assert row["cpu_ms_per_payment"]["postgres"] > 0, "the service's PostgreSQL backends did some work"
        assert set(row["cpu_over_reference"]) == {
            "service_over_python_loop", "simulator_over_python_loop", "postgres_over_pgbench"}
    reference = data["reference"]
    assert len(reference["python_loop"]["ms"]) == 2 and reference["python_loop"]["mean_ms"] > 0
    if shutil.which("pgbench"):
        assert len(reference["pgbench"]["ms"]) == 2 and reference["pgbench"]["mean_ms"] > 0, reference["pgbench"]
    slow = data["blink_latency"]
    assert slow["blink_latency_ms"] == 100 and slow["settled"] == slow["payments"] > 0 and slow["errors"] == 0
    # every Blink call was answered 100 ms late and forwarding takes at least the POS invoice's status check
    assert slow["payment_to_forwarded"]["p50_ms"] >= 100
    memory = data["memory"]
    assert memory["rss_mb_after_first"] > 0 and memory["rss_mb_after_second"] > 0
    hot = data["hot_path"]
    for poll in (hot["status_poll_hit"], hot["status_poll_miss"]):
        assert poll["polls"] > 0 and poll["round_trips_per_poll"] >= 0 and poll["latency"]["n"] == poll["polls"]
    assert hot["status_poll_miss"]["round_trips"] > 0, "a miss reads PostgreSQL, and the proxy counts it"
    assert hot["streams"]["open"] > 0 and hot["streams"]["service_cpu_ms_per_s_with"] >= 0
    assert len(data["targets"]) == 8 and all({"target", "wanted", "measured", "met"} <= set(t) for t in data["targets"])
    table = next(tmp_path.glob("tiny-*.md")).read_text()
    assert "Storage lifecycle" in table and "Hot read path" in table and "Targets" in table
    assert "Reference workloads" in table and "100 ms late" in table
