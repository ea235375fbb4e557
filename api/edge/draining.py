"""Whether this worker is draining: its host was told to stop, so /readyz answers 503 and a
load balancer stops sending while the requests in flight finish.

Hypercorn's master answers SIGTERM by setting an event its workers poll; each worker
then stops accepting, lets its requests finish (up to `graceful_timeout`) and runs the
lifespan shutdown, which closes the pools. The workers themselves keep SIGTERM's default
action, so a signal sent to every process of the service (systemd's default
KillMode=control-group, `kill -TERM -<group>`) would kill them mid-request. Here a worker
takes SIGTERM as a request to stop the whole host, and passes it to the master.

A worker that stops accepting closes its own listening socket (api.edge.listening), and
the kernel resets the connections queued on it: a request a balancer sent just before
it noticed /readyz would fail. With `DRAIN_DELAY` a worker keeps accepting that long
after the master's word, /readyz answering 503 meanwhile, so the balancer has stopped
sending by the time the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from api.edge.internals import (
    hypercorn_shutdown_event,
    hypercorn_worker_shutdown_wait,
    replace_hypercorn_worker_shutdown_wait,
)

logger = logging.getLogger(__name__)


class Draining:
    """The draining state of one worker process."""

    def __init__(self) -> None:
        self._master_event = hypercorn_shutdown_event()
        self._signalled = False

    @property
    def active(self) -> bool:
        """Whether the host is stopping: this worker or its master got SIGTERM."""
        return self._signalled or (self._master_event is not None and self._master_event.is_set())

    def keep_accepting_after_stop(self, seconds: float) -> None:
        """Have this Hypercorn worker accept for `seconds` more once its master says stop.

        Call it while the app loads (the worker builds its wait right after); nothing
        changes in a process that is no worker of Hypercorn's master, or for 0.
        """
        if self._master_event is None or seconds <= 0:
            return
        wait_for_master = hypercorn_worker_shutdown_wait()

        async def wait_then_keep_accepting(
            event: Any, sleep: Callable[[float], Awaitable[Any]]
        ) -> None:
            await wait_for_master(event, sleep)
            logger.info("draining: accepting for %gs more (DRAIN_DELAY)", seconds)
            await sleep(seconds)

        replace_hypercorn_worker_shutdown_wait(wait_then_keep_accepting)

    def watch_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take SIGTERM on `loop` as the host's signal to drain, in a worker of Hypercorn's master.

        A single-process Hypercorn handles SIGTERM itself, and other processes have no
        master to tell: both are left alone.
        """
        if self._master_event is None or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self) -> None:
        # Once is enough: a stop sent to every process would otherwise reach the master
        # once per worker and signal, and a master that knows needs no word at all.
        if self._signalled or self.active:
            self._signalled = True
            return
        self._signalled = True
        logger.info("SIGTERM: draining, and asking the master to stop every worker")
        # The master sets the event every worker polls; setting it here instead would
        # end the workers while the master, still active, started new ones.
        os.kill(os.getppid(), signal.SIGTERM)
