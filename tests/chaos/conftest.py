"""Fixtures of the chaos suite: a factory of three-process clusters, closed and scanned for secrets after the test."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.cluster import Cluster, close_cluster, open_cluster
from tests.chaos.invariants import scan_for_secrets

ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture()
async def make_cluster(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[ClusterFactory]:
    """`await make_cluster(**settings)`: three instances (settings as env overrides, e.g. rate_limit_per_wallet=5).

    After the test, once the processes are stopped, every cluster's tables,
    Redis keys under the prefix, data files (journal, store file) and captured
    logs are scanned for every test API key in plaintext: zero hits allowed.
    """
    made: list[Cluster] = []

    async def factory(**settings: Any) -> Cluster:
        cluster = await open_cluster(tmp_path / f"cluster-{len(made)}", fresh_database_url, redis_url,
                                     key_prefix, **settings)
        made.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in made:
            await close_cluster(cluster)
    for cluster in made:
        await scan_for_secrets(cluster)


def scale(short: int, full: int) -> list[Any]:
    """The scenario's payment count: `short` in the default suite, `full` under `-m slow` (make chaos)."""
    return [pytest.param(short, id=f"short-{short}"),
            pytest.param(full, id=f"full-{full}", marks=[pytest.mark.slow, pytest.mark.timeout(1800)])]
