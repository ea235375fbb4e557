"""RateLimitStore: rate-limit counters in Redis, falling back to per-process memory while
Redis is unreachable, so login keeps working.

Request limits are the `limits` library's sliding-window counters. Limits on password
checks are reservations that can be given back, which `limits` has no operation for: each
is one member of a sorted set per account (a sliding log of at most `limit` entries),
taken and checked in one Lua script so concurrent attempts can't overshoot."""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio.cluster import RedisCluster

from db.redis_pool import UNAVAILABLE, RedisClient

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl"
WARNING_INTERVAL = 60.0
# The local fallback forgets accounts whose reservations all expired once it holds this many.
LOCAL_SWEEP_AT = 10_000

# KEYS[1]: one account's reservations, ids scored by when they were taken (ms, Redis's clock,
# so every host agrees). ARGV: limit, window in ms, the new reservation's id.
# Answers {1, remaining} when taken, {0, ms until the oldest expires} when refused.
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local taken = redis.call('ZCARD', KEYS[1])
if taken >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, limit - taken - 1}
"""


@dataclass(frozen=True)
class Verdict:
    """The outcome of a rate-limit check."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int


@dataclass(frozen=True)
class Reservation:
    """One attempt taken from a limit before the work it guards, so it can be given back."""

    verdict: Verdict
    key: str = ""
    id: str = ""
    local: bool = False


def _reservation_key(prefix: str, item: RateLimitItem, identifiers: tuple[str, ...]) -> str:
    return prefix + ":".join((KEY_PREFIX, "reserved", *identifiers, str(item.get_expiry())))


def _retry_after(seconds: float) -> int:
    return max(math.ceil(seconds), 1)


@dataclass
class _LocalReservations:
    """The same sliding log in this process's memory, while Redis is unreachable."""

    taken: dict[str, dict[str, float]] = field(default_factory=dict)

    def reserve(self, key: str, reservation_id: str, limit: int, window: float) -> Verdict:
        now = time.time()
        if len(self.taken) >= LOCAL_SWEEP_AT:
            self._sweep(now, window)
        log = {i: t for i, t in self.taken.get(key, {}).items() if t > now - window}
        self.taken[key] = log
        if len(log) >= limit:
            return Verdict(False, limit, 0, _retry_after(min(log.values()) + window - now))
        log[reservation_id] = now
        return Verdict(True, limit, limit - len(log), 0)

    def release(self, key: str, reservation_id: str) -> None:
        self.taken.get(key, {}).pop(reservation_id, None)

    def _sweep(self, now: float, window: float) -> None:
        self.taken = {
            key: log
            for key, log in self.taken.items()
            if any(t > now - window for t in log.values())
        }


class _ClusterStorage(RedisClusterStorage):
    """limits' cluster storage over the worker's own cluster client.

    Left to itself it would open a client of its own, with its own connections to every
    node, that nothing closes. Its sliding-window keys share a hash tag ("{...}"), so
    its Lua scripts stay inside one slot.
    """

    def __init__(self, client: RedisCluster, key_prefix: str) -> None:
        self._client = client
        super().__init__(
            # Parsed for the nodes use_cluster() would dial; configure_bridge() dials none.
            "async+redis+cluster://localhost:6379",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=key_prefix,
        )

    def configure_bridge(self) -> None:
        # In place of use_cluster(), which would build the second client.
        self.bridge.storage = self._client  # type: ignore[attr-defined]
        self.bridge.connection_getter = lambda _readonly: self._client  # type: ignore[attr-defined]


def _shared_storage(redis: RedisClient, key_prefix: str) -> RedisStorage:
    if isinstance(redis, RedisCluster):
        return _ClusterStorage(redis, key_prefix)
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        wrap_exceptions=True,
        key_prefix=key_prefix,
    )


class RateLimitStore:
    def __init__(self, redis: RedisClient, key_prefix: str = "") -> None:
        """Counters under `key_prefix` (REDIS_KEY_PREFIX: several deployments or test runs
        sharing one Redis)."""
        self._prefix = key_prefix
        shared = _shared_storage(redis, key_prefix + KEY_PREFIX)
        self._shared = SlidingWindowCounterRateLimiter(shared)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._local_reservations = _LocalReservations()
        self._last_warning = -math.inf

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Count one request; the verdict says whether it was within the limit."""
        return await self._ask("hit", item, identifiers)

    async def test(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        """Whether one more request would be within the limit, without counting it."""
        return await self._ask("test", item, identifiers)

    async def _ask(
        self, question: Literal["hit", "test"], item: RateLimitItem, identifiers: tuple[str, ...]
    ) -> Verdict:
        # Redis down: this worker's own counters answer, so a limit holds per worker.
        try:
            allowed = await getattr(self._shared, question)(item, *identifiers)
            return await self._verdict(self._shared, bool(allowed), item, identifiers)
        except StorageError:
            self._warn()
            allowed = await getattr(self._local, question)(item, *identifiers)
            return await self._verdict(self._local, bool(allowed), item, identifiers)

    async def reserve(self, item: RateLimitItem, *identifiers: str) -> Reservation:
        """Take one of the limit's attempts atomically; the verdict says whether one was free."""
        key = _reservation_key(self._prefix, item, identifiers)
        reservation_id = uuid.uuid4().hex
        window = item.get_expiry()
        try:
            allowed, value = await self._reserve(
                keys=[key], args=[item.amount, window * 1000, reservation_id]
            )
        except UNAVAILABLE:
            self._warn()
            verdict = self._local_reservations.reserve(key, reservation_id, item.amount, window)
            return Reservation(verdict, key, reservation_id, local=True)
        if allowed:
            return Reservation(Verdict(True, item.amount, int(value), 0), key, reservation_id)
        return Reservation(Verdict(False, item.amount, 0, _retry_after(int(value) / 1000)))

    async def release(self, reservation: Reservation) -> None:
        """Give a taken attempt back (a refused one holds nothing)."""
        if not reservation.verdict.allowed:
            return
        if reservation.local:
            self._local_reservations.release(reservation.key, reservation.id)
            return
        try:
            await self._redis.zrem(reservation.key, reservation.id)
        except UNAVAILABLE:
            # Not given back: it expires with its window, as a failure would.
            self._warn()

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
