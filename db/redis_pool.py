"""The worker's Redis client: one capped, blocking connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis import exceptions as redis_exc
from redis.asyncio import BlockingConnectionPool, Redis

from db.errors import StoreUnavailable

UNAVAILABLE = (redis_exc.ConnectionError, redis_exc.TimeoutError, OSError)


def create_redis(url: str, *, pool_size: int, timeout: float, client_name: str) -> Redis:
    """A client that waits for a free connection instead of opening more than `pool_size`."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        client_name=client_name,
        decode_responses=True,
    )
    return Redis(connection_pool=pool)


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn redis-py's connection failures into StoreUnavailable("redis")."""
    try:
        yield
    except UNAVAILABLE:
        raise StoreUnavailable("redis") from None
