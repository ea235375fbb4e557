"""Readiness: do Postgres and Redis answer?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.edge.draining import Draining
from db.redis_pool import RedisClient

CHECK_TIMEOUT = 2.0


class OpsService:
    """Built once per worker with the pools it checks."""

    def __init__(self, engine: AsyncEngine, redis: RedisClient, draining: Draining) -> None:
        self._engine = engine
        self._redis = redis
        self._draining = draining

    async def readiness(self) -> dict[str, str]:
        """The state of each backing service ("ok" or "unavailable"); a draining worker is not
        ready, whatever they say, so a load balancer stops sending while requests finish."""
        if self._draining.active:
            return {"worker": "draining"}
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
