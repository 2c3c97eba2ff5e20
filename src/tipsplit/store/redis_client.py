"""The one place a Redis client is built: a single server, a Redis Cluster, or a master found through Sentinel.

Which one is chosen by the URL's scheme, so everything that hands a URL on
(settings, the embedded stack, the tests) keeps working unchanged:

- `redis://host:port/db` (`rediss://` for TLS): one server, as always.
- `redis+cluster://host:port[,host:port...]` (`rediss+cluster://`): any reachable
  node(s) of a Redis Cluster; the client discovers the others and follows
  slot moves and failovers. Cluster mode has no databases (the path is ignored).
- `redis+sentinel://host:port[,host:port...]/master-name[/db]`
  (`rediss+sentinel://` for TLS to the master): the sentinels to ask for the
  current master of `master-name`; a failover is followed on the next
  connection. Settings build this from REDIS_SENTINELS and REDIS_SENTINEL_MASTER.

A password in the URL (or else the `password` argument) is the data nodes' one;
sentinels that require their own are given `sentinel_password`.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

RedisClient = aioredis.Redis | RedisCluster

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis URL names: the kind of deployment, its hosts, and how to authenticate and encrypt."""

    kind: str
    hosts: list[tuple[str, int]]
    tls: bool
    username: str | None
    password: str | None
    db: int
    master: str | None


def _hosts(host_list: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in filter(None, (entry.strip() for entry in host_list.split(","))):
        host, colon, port = item.rpartition(":")
        if not colon or host.endswith(":") or (item.startswith("[") and not host.endswith("]")):
            host, port = item, ""
        hosts.append((host.strip("[]"), int(port) if port else default_port))
    return hosts


def parse_target(url: str) -> RedisTarget:
    """Split a cluster or sentinel URL into its parts (several hosts are comma-separated, as in libpq)."""
    parts = urlsplit(url)
    userinfo, _, host_list = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    path = [segment for segment in parts.path.split("/") if segment]
    kind = "cluster" if parts.scheme in CLUSTER_SCHEMES else "sentinel" if parts.scheme in SENTINEL_SCHEMES else "single"
    master = path.pop(0) if kind == "sentinel" and path else None
    if kind == "sentinel" and not master:
        raise ValueError("a redis+sentinel:// URL names the master after the hosts: redis+sentinel://host:port/name")
    return RedisTarget(
        kind=kind,
        hosts=_hosts(host_list, 26379 if kind == "sentinel" else 6379),
        tls=parts.scheme.startswith("rediss"),
        username=unquote(username) or None,
        password=unquote(password) or None,
        db=int(path[0]) if path and kind != "cluster" else 0,
        master=master,
    )


def _tls_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("rediss", *parts[1:])) if parts.scheme == "redis" else url


def connect_redis(
    url: str,
    *,
    password: str | None = None,
    tls: bool = False,
    sentinel_password: str | None = None,
    **options: Any,
) -> RedisClient:
    """A client for whatever `url` names; `options` are the connection options (timeouts, retry, decoding)."""
    target = parse_target(url)
    if target.kind == "single":
        if password:
            options["password"] = password
        return aioredis.Redis.from_url(_tls_url(url) if tls else url, **options)
    options["password"] = target.password or password
    options["username"] = target.username
    if target.tls or tls:
        options["ssl"] = True
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return RedisCluster(startup_nodes=nodes, **options)
    assert target.master is not None
    # Asking a sentinel is a short request even for a subscriber's client, whose own reads have no timeout.
    sentinel_options: dict[str, Any] = {
        key: options[key] for key in ("socket_connect_timeout", "retry") if key in options
    }
    sentinel_options["socket_timeout"] = options.get("socket_timeout") or options.get("socket_connect_timeout")
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    sentinel = Sentinel(target.hosts, sentinel_kwargs=sentinel_options)
    return sentinel.master_for(target.master, db=target.db, **options)
