"""The opt-in periodic purge: a task on the worker's loop, every SESSION_PURGE_INTERVAL seconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from api.config.settings import Settings
from api.maintenance.purge import purge
from db.errors import StoreUnavailable
from db.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)


class PurgeSchedule:
    """Purges every `session_purge_interval` seconds until stopped; one failure never ends it."""

    def __init__(self, new_unit_of_work: Callable[[], UnitOfWork], settings: Settings) -> None:
        self._new_unit_of_work = new_unit_of_work
        self._settings = settings
        self._interval = settings.session_purge_interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start purging on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="purge-schedule")

    async def stop(self) -> None:
        """Stop: a batch under way finishes (batches are short), then the task ends."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not await self._stop_requested_within(self._interval):
            try:
                report = await purge(self._new_unit_of_work, self._settings, stop=self._stopping)
            except StoreUnavailable:
                logger.warning("periodic purge skipped: Postgres is unavailable")
            except Exception:
                # Logged and retried at the next interval: maintenance must not take a worker down.
                logger.exception("periodic purge failed")
            else:
                if report.skipped or any(report.deleted.values()):
                    logger.info(report.summary())

    async def _stop_requested_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
