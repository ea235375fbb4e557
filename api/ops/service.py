"""Readiness: do Postgres and Redis answer?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.redis_pool import RedisClient

CHECK_TIMEOUT = 2.0


async def _postgres_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _redis_ok(redis: RedisClient) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return bool(await redis.ping())
    except Exception:
        return False


async def readiness(engine: AsyncEngine, redis: RedisClient) -> dict[str, str]:
    """The state of each backing service: "ok" or "unavailable"."""
    postgres, redis_state = await asyncio.gather(_postgres_ok(engine), _redis_ok(redis))
    return {
        "postgres": "ok" if postgres else "unavailable",
        "redis": "ok" if redis_state else "unavailable",
    }
