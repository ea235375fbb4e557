"""The worker's Redis client: one capped, blocking connection pool, or a Redis Cluster client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from redis import exceptions as redis_exc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from db.errors import StoreUnavailable


class BoundedRedisCluster(RedisCluster):
    """A cluster client that waits for a free connection, as BlockingConnectionPool does.

    redis-py's cluster client refuses a command (MaxConnectionsError) once a node's
    connections are all busy, so a burst of logins would push the account limits onto
    per-process counters. Here at most `max_connections` commands and pipelines are in
    flight; each holds at most one connection per node, so no node's pool runs dry.
    """

    def __init__(self, *, max_connections: int, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._free = asyncio.Semaphore(max_connections)
        self._wait_timeout = wait_timeout

    @asynccontextmanager
    async def connection_slot(self) -> AsyncIterator[None]:
        """Hold one of the client's slots; ConnectionError after waiting `wait_timeout`."""
        try:
            async with asyncio.timeout(self._wait_timeout):
                await self._free.acquire()
        except TimeoutError:
            raise redis_exc.ConnectionError("No connection available.") from None
        try:
            yield
        finally:
            self._free.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.connection_slot():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py
        # redis-py declares ClusterPipeline's event dispatcher abstract, and sets it itself.
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(ClusterPipeline):
    cluster_client: BoundedRedisCluster

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        async with self.cluster_client.connection_slot():
            return await super().execute(raise_on_error, allow_redirections)


RedisClient: TypeAlias = Redis | RedisCluster

UNAVAILABLE = (
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    # A cluster whose slots are not all served (a shard failing over) is down for us too.
    redis_exc.ClusterDownError,
    redis_exc.SlotNotCoveredError,
    OSError,
)


def create_redis(
    url: str, *, pool_size: int, timeout: float, client_name: str, cluster: bool = False
) -> RedisClient:
    """A client that never opens more than `pool_size` connections (per node on a cluster).

    Both wait up to `timeout` for a free connection. A cluster client takes `url` as a
    seed node and discovers the others.
    """
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "client_name": client_name,
        "decode_responses": True,
    }
    if cluster:
        return BoundedRedisCluster.from_url(
            url, max_connections=pool_size, wait_timeout=timeout, **options
        )
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=timeout, **options
    )
    return Redis(connection_pool=pool)


def create_subscriber(
    client: RedisClient, url: str, *, timeout: float, client_name: str, attempt: int = 0
) -> Redis:
    """A client of its own for one pub/sub connection, which never reconnects by itself.

    redis-py would reconnect a pub/sub connection and subscribe again without a word,
    losing whatever was published meanwhile; the caller must see every loss. On a cluster
    it speaks to one node (a classic PUBLISH reaches them all), a different one at each
    `attempt`, so a node that is down is not asked forever.
    """
    if isinstance(client, RedisCluster) and client.get_nodes():
        nodes = sorted(client.get_nodes(), key=lambda node: node.name)
        node = nodes[attempt % len(nodes)]
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{node.host}:{node.port}" if credentials else node.name
        url = parts._replace(netloc=netloc).geturl()
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name=client_name,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


async def prepare_redis(client: RedisClient) -> None:
    """Learn a cluster's slot map before the first request.

    Until it has one, redis-py sends a command to any node, which answers MOVED. A
    cluster that does not answer now is learnt at its first command instead.
    """
    if isinstance(client, RedisCluster):
        try:
            await client.initialize()
        except (*UNAVAILABLE, redis_exc.RedisClusterException):
            pass


async def close_redis(client: RedisClient) -> None:
    """Close the client and every connection it opened."""
    await client.aclose()
    if isinstance(client, Redis):
        await client.connection_pool.disconnect()


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn redis-py's connection failures into StoreUnavailable("redis")."""
    try:
        yield
    except UNAVAILABLE:
        raise StoreUnavailable("redis") from None
