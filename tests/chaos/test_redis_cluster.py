"""Chaos on a Redis Cluster: three service processes share a three-master cluster, and one master crashes mid-load.

With no replica to take over, the crashed master's slots go unserved and the
cluster refuses every command until the node is back (empty: no
persistence). Settlement must not notice beyond Redis being "down" for a
while: the ledger invariant holds, every payment completes, and every
instance finds Redis again without a restart.
"""

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.chaos.conftest import ClusterFactory, scale
from tests.chaos.invariants import Report, check_ledger, drain, redis_up_on_every_instance
from tests.chaos.test_scenarios import _waves
from tests.support.redis_servers import LocalCluster, redis_binaries_present

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not redis_binaries_present(), reason="redis-server and redis-cli start the cluster"),
]


@pytest.fixture()
def redis_cluster() -> Iterator[LocalCluster]:
    """A cluster of this test's own: it is crashed on purpose."""
    local = LocalCluster().start_cluster()
    yield local
    local.stop()


@pytest.fixture()
def redis_url(redis_cluster: LocalCluster) -> str:
    """The service processes (and the fixtures that clean up after them) use the test's own cluster."""
    return redis_cluster.url


@pytest.mark.parametrize("n", scale(30, 1000))
async def test_a_cluster_master_crashes_mid_load(
    make_cluster: ClusterFactory, redis_cluster: LocalCluster, n: int
) -> None:
    cluster = await make_cluster()
    crashed: list[int] = []

    async def crash(round_: int) -> None:
        await asyncio.sleep(cluster.rng.uniform(0.2, 0.8))
        if round_ == 0:
            victim = cluster.rng.choice(redis_cluster.ports)
            crashed.append(victim)
            await asyncio.to_thread(redis_cluster.kill, victim)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(redis_cluster.restart, victim)
            await asyncio.to_thread(redis_cluster.wait_until_ok)

    started = time.monotonic()
    sales = await _waves(cluster, n, 3, crash)
    report = Report("Redis Cluster master crashed", faults="one of three masters killed for 2 s, back empty")
    report.drain_seconds = await drain(cluster, timeout=60 + n * 0.3)
    report.extra = {"crashed_port": crashed, "load_s": round(time.monotonic() - started, 1)}
    await check_ledger(cluster, report)
    assert report.paid == len(sales) == report.completed
    report.extra["redis_up_on_all_after_s"] = await redis_up_on_every_instance(cluster)
    print(report.line())
