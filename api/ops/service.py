"""Readiness: do Postgres and Redis answer?"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CHECK_TIMEOUT = 2.0


class OpsService:
    """Built once per worker with the pools it checks."""

    def __init__(self, engine: AsyncEngine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis

    async def readiness(self) -> dict[str, str]:
        """The state of each backing service: "ok" or "unavailable"."""
        postgres, redis = await asyncio.gather(self._postgres_ok(), self._redis_ok())
        return {
            "postgres": "ok" if postgres else "unavailable",
            "redis": "ok" if redis else "unavailable",
        }

    async def _postgres_ok(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def _redis_ok(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return bool(await self._redis.ping())
        except Exception:
            return False
