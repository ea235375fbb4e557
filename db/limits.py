"""RateLimitStore: rate-limit counters in Redis (the `limits` library's sliding-window
counters, atomic Lua on the server), falling back to per-process memory while Redis
is unreachable, so login keeps working."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl"
WARNING_INTERVAL = 60.0


@dataclass(frozen=True)
class Verdict:
    """The outcome of a rate-limit check."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int


class RateLimitStore:
    def __init__(self, redis: Redis) -> None:
        shared = RedisStorage(
            "async+redis://",
            implementation="redispy",
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
        )
        self._shared = SlidingWindowCounterRateLimiter(shared)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._last_warning = -math.inf

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Count one request; the verdict says whether it was within the limit."""
        try:
            allowed = await self._shared.hit(item, *identifiers)
            return await self._verdict(self._shared, allowed, item, identifiers)
        except StorageError:
            self._warn()
            allowed = await self._local.hit(item, *identifiers)
            return await self._verdict(self._local, allowed, item, identifiers)

    async def test(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Whether one more request would be within the limit, without counting it."""
        try:
            allowed = await self._shared.test(item, *identifiers)
            return await self._verdict(self._shared, allowed, item, identifiers)
        except StorageError:
            self._warn()
            allowed = await self._local.test(item, *identifiers)
            return await self._verdict(self._local, allowed, item, identifiers)

    async def _verdict(
        self,
        limiter: SlidingWindowCounterRateLimiter,
        allowed: bool,
        item: RateLimitItem,
        identifiers: tuple[str, ...],
    ) -> Verdict:
        if allowed:
            # The remaining count is only reported with a refusal: no second round trip here.
            return Verdict(True, item.amount, -1, 0)
        stats = await limiter.get_window_stats(item, *identifiers)
        reset_after = max(math.ceil(stats.reset_time - time.time()), 1)
        return Verdict(False, item.amount, stats.remaining, reset_after)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            logger.warning(
                "Redis is unreachable: rate limits fall back to this process's own counters"
            )
