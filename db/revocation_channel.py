"""InvalidationListener: one worker's subscription to the revocation store's channel, which
keeps its RevocationCache honest (REVOCATION_CACHE).

The cache serves only between the subscription's confirmation and the first sign of
trouble. A confirmed subscription flushes it first (whatever was published before was
missed), so does a lost one, and a lost one also turns it off: the worker asks Redis on
every request until it is subscribed again. A connection can die without a word (a
half-open TCP connection, a stuck Redis), so the listener PINGs through the subscribed
connection every `ping_every` seconds; no PONG within `answer_within` counts as lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_exc
from redis.asyncio import Redis

from db.redis_pool import UNAVAILABLE
from db.revocation_cache import RevocationCache

logger = logging.getLogger(__name__)

PING_EVERY = 1.0
# Reconnecting: after a loss at once-ish, then backing off to a few seconds while Redis is down.
FIRST_RETRY = 0.05
LAST_RETRY = 2.0
# What the PING carries, so its PONG is told apart from anything else on the connection.
PING_DATA = "revocation-cache"
# Closing a connection is a socket close; bounded anyway so a stop can never wait on it.
CLOSE_GRACE = 1.0


class ChannelSilent(Exception):
    """The subscribed connection did not answer within the bound."""


class InvalidationListener:
    """Subscribes with clients from `connect(attempt)`; `start`/`stop` on the worker's loop."""

    def __init__(
        self,
        cache: RevocationCache,
        channel: str,
        connect: Callable[[int], Redis],
        *,
        answer_within: float,
        ping_every: float = PING_EVERY,
    ) -> None:
        self._cache = cache
        self._channel = channel
        self._connect = connect
        self._answer_within = answer_within
        self._ping_every = ping_every
        self._task: asyncio.Task[None] | None = None
        self._served = False  # by the current connection
        # Set each time a subscription is confirmed and the cache serves (tests wait on it).
        self.confirmed = asyncio.Event()

    @property
    def cache(self) -> RevocationCache:
        """The cache this listener keeps honest."""
        return self._cache

    def start(self) -> None:
        """Listen on the running loop until stopped."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="revocation-channel")

    async def stop(self) -> None:
        """Stop listening; the cache no longer serves."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=CLOSE_GRACE * 2)
            self._task = None
        self._cache.bypass()

    async def _run(self) -> None:
        attempt = 0
        retry = FIRST_RETRY
        while True:
            self._served = False
            try:
                await self._listen(self._connect(attempt))
            except (*UNAVAILABLE, redis_exc.RedisError, ChannelSilent) as error:
                if self._cache.serving:
                    logger.warning(
                        "revocation cache off, every request asks Redis: the invalidation "
                        "channel was lost (%s)",
                        type(error).__name__,
                    )
            except Exception:
                # A bug must not end the task: the cache stays off (closed), and it tries again.
                logger.exception("revocation cache off: the invalidation listener failed")
            finally:
                self._cache.bypass()
                self.confirmed.clear()
            if self._served:
                retry = FIRST_RETRY
            attempt += 1
            await asyncio.sleep(retry)
            retry = min(retry * 2, LAST_RETRY)

    async def _listen(self, client: Redis) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # The confirmation is the first answer owed.
            due: float | None = time.monotonic() + self._answer_within
            next_ping = time.monotonic() + self._ping_every
            while True:
                wait = (due if due is not None else next_ping) - time.monotonic()
                message = await pubsub.get_message(timeout=max(wait, 0.0))
                if message is not None and self._answered(message):
                    due = None
                now = time.monotonic()
                if due is not None and now >= due:
                    raise ChannelSilent()
                if due is None and now >= next_ping:
                    await pubsub.ping(PING_DATA)
                    due = now + self._answer_within
                    next_ping = now + self._ping_every
        finally:
            await _close(pubsub, client)

    def _answered(self, message: dict[str, Any]) -> bool:
        """Act on `message`; whether it answers what the listener waits for."""
        kind = message["type"]
        if kind == "message":
            self._cache.invalidate(str(message["data"]))
            return False
        if kind == "subscribe" and message["channel"] == self._channel:
            self._cache.serve()
            self._served = True
            self.confirmed.set()
            logger.info("revocation cache on: subscribed to %s", self._channel)
            return True
        return bool(kind == "pong" and message["data"] == PING_DATA)


async def _close(pubsub: Any, client: Redis) -> None:
    try:
        async with asyncio.timeout(CLOSE_GRACE):
            await pubsub.aclose()
            await client.aclose()
    except (TimeoutError, *UNAVAILABLE, redis_exc.RedisError):
        pass
