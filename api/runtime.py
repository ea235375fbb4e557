"""How async views run: one event loop per worker process owns every pool.

Flask runs `async def` views through `app.async_to_sync`, which by default starts
a new event loop per call; asyncpg and redis.asyncio pools are bound to the loop
that created them, so that would mean new connections for every request. Here the
worker's loop (Hypercorn's own, captured in the ASGI lifespan) runs every view
coroutine, and the pools are opened on it when the worker starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from flask import current_app
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.draining import Draining
from api.maintenance.schedule import PurgeSchedule
from api.security.passwords import Passwords
from api.security.rate_limits import RateLimits
from api.security.verifier import TokenVerifier
from api.settings import Settings
from db.engine import UnitOfWork, create_engine, create_session_factory
from db.limits import RateLimitStore
from db.redis_pool import RedisClient, close_redis, create_redis, prepare_redis
from db.revocation import RevocationStore

logger = logging.getLogger(__name__)


class Runtime:
    """The resources of one worker process, opened and closed on its event loop."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: RedisClient
    revocations: RevocationStore
    rate_limits: RateLimits
    verifier: TokenVerifier

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.passwords = Passwords(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            workers=settings.hash_workers,
            queue_max=settings.hash_queue_max,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.draining = Draining()
        self.purge_schedule: PurgeSchedule | None = None

    async def start(self) -> None:
        """Open the pools on the running loop, which from now on runs every async view."""
        settings = self.settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout,
            application_name=settings.db_application_name,
            statement_cache_size=settings.database_statement_cache_size,
        )
        self.session_factory = create_session_factory(self.engine)
        self.redis = create_redis(
            settings.redis_url,
            pool_size=settings.redis_pool_size,
            timeout=settings.redis_timeout,
            client_name=settings.db_application_name,
            cluster=settings.redis_cluster,
        )
        await prepare_redis(self.redis)
        self.revocations = RevocationStore(self.redis)
        self.verifier = TokenVerifier(settings, self.revocations)
        self.rate_limits = RateLimits(RateLimitStore(self.redis), settings)
        self.loop = asyncio.get_running_loop()
        if settings.session_purge_interval:
            self.purge_schedule = PurgeSchedule(self.unit_of_work, settings)
            self.purge_schedule.start()

    async def stop(self) -> None:
        """Close the pools; the worker is going away."""
        if self.purge_schedule is not None:
            await self.purge_schedule.stop()
            self.purge_schedule = None
        self.loop = None
        await close_redis(self.redis)
        await self.engine.dispose()
        self.passwords.close()

    def unit_of_work(self) -> UnitOfWork:
        """A transaction with the repositories, for one service call."""
        return UnitOfWork(self.session_factory)

    def async_to_sync(self, func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        """Wrap a coroutine function so a request thread runs it on the worker's loop."""

        @functools.wraps(func)
        def run_on_worker_loop(*args: Any, **kwargs: Any) -> Any:
            loop = self.loop
            if loop is None:
                raise RuntimeError("The worker runtime has not been started (ASGI lifespan).")
            # Flask's request context lives in contextvars: the task must see the thread's.
            context = contextvars.copy_context()
            outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

            def start() -> None:
                task = loop.create_task(func(*args, **kwargs), context=context)
                task.add_done_callback(functools.partial(_copy_outcome, outcome))

            loop.call_soon_threadsafe(start)
            return outcome.result()

        return run_on_worker_loop


def _copy_outcome(outcome: concurrent.futures.Future[Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        outcome.cancel()
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


def runtime() -> Runtime:
    """The runtime of the app serving the current request."""
    return current_app.extensions["runtime"]  # type: ignore[no-any-return]
