"""How async views run: one event loop per worker process owns every pool.

Flask runs `async def` views through `app.async_to_sync`, which by default starts
a new event loop per call; asyncpg and redis.asyncio pools are bound to the loop
that created them, so that would mean new connections for every request. Here the
worker's loop (Hypercorn's own, captured in the ASGI lifespan) runs every view
coroutine: Flask itself runs in a greenlet on that loop (api.edge.bridge), and a view's
coroutine is awaited by the greenlet's parent (AuthApp.async_to_sync, api.edge.internals).
The pools are opened on the loop when the worker starts.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from api.config.settings import Settings
from api.domain.clock import Clock, utc_now
from api.edge.draining import Draining
from api.maintenance.schedule import PurgeSchedule
from api.resources import Resources, open_resources
from api.security.keys import KeySet
from db.errors import StoreUnavailable
from db.redis_pool import prepare_redis

logger = logging.getLogger(__name__)


class StartupRefused(RuntimeError):
    """The worker must not serve: the message says why, in one line."""


class Runtime:
    """One worker process's lifetime: `start()` opens its resources on its loop, `stop()`
    closes them."""

    def __init__(self, settings: Settings, keys: KeySet) -> None:
        self.settings = settings
        self.draining = Draining()
        self.keys = keys
        self._resources: Resources | None = None
        self._purge_schedule: PurgeSchedule | None = None

    @property
    def resources(self) -> Resources:
        """The resources of the started worker.

        Raises:
            RuntimeError: the worker has not been started (ASGI lifespan).
        """
        if self._resources is None:
            raise RuntimeError("The worker runtime has not been started (ASGI lifespan).")
        return self._resources

    async def start(
        self, *, bind: AsyncConnection | None = None, clock: Clock = utc_now
    ) -> Resources:
        """Open the resources on the running loop, which from now on runs every async view.

        `bind` and `clock` are for tests: every Postgres statement inside a transaction the
        test owns, and a clock it can move.
        """
        resources = open_resources(self.settings, self.keys, self.draining, bind=bind, clock=clock)
        try:
            await self._refuse_unknown_roles(resources)
        except BaseException:
            await resources.close()
            raise
        self._resources = resources
        await prepare_redis(resources.redis)
        if resources.invalidations is not None:
            # Learns the cluster's nodes from the prepared client; serves once subscribed.
            resources.invalidations.start()
        if self.settings.mail_send_in_workers:
            resources.outbox_sender.start()
        if self.settings.session_purge_interval:
            self._purge_schedule = PurgeSchedule(resources.database.unit_of_work, self.settings)
            self._purge_schedule.start()
        return resources

    async def _refuse_unknown_roles(self, resources: Resources) -> None:
        # Once per worker: a user whose role ROLE_PERMISSIONS does not name would get
        # tokens without permissions and could not be told apart from a typo in the setting.
        known = sorted(self.settings.role_permissions)
        try:
            async with resources.database.unit_of_work() as uow:
                unknown = await uow.users.roles_other_than(known)
        except StoreUnavailable:
            logger.warning("Postgres is unreachable: users' roles not checked at start-up")
            return
        if unknown:
            raise StartupRefused(
                f"Users hold roles that ROLE_PERMISSIONS does not name: {', '.join(unknown)}; "
                f"add them to ROLE_PERMISSIONS (it names {', '.join(known)}) or change "
                "those users' roles."
            )

    async def stop(self) -> None:
        """Close the pools; the worker is going away."""
        if self._purge_schedule is not None:
            await self._purge_schedule.stop()
            self._purge_schedule = None
        if self._resources is not None:
            if self._resources.invalidations is not None:
                await self._resources.invalidations.stop()
            await self._resources.services.recovery.settled()
            await self._resources.outbox_sender.stop()
            await self._resources.close()
            self._resources = None
