"""Whether this worker is draining: its host was told to stop, so /readyz answers 503 and a
load balancer stops sending while the requests in flight finish.

Hypercorn's master answers SIGTERM by setting an event its workers poll; each worker
then stops accepting, lets its requests finish (up to `graceful_timeout`) and runs the
lifespan shutdown, which closes the pools. The workers themselves keep SIGTERM's default
action, so a signal sent to every process of the service (systemd's default
KillMode=control-group, `kill -TERM -<group>`) would kill them mid-request. Here a worker
takes SIGTERM as a request to stop the whole host, and passes it to the master.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from typing import Any

logger = logging.getLogger(__name__)


def _hypercorn_shutdown_event() -> Any:
    # Hypercorn hands each spawned worker its master's shutdown event as a keyword
    # argument of the process's target (tests/unit/test_hypercorn_contract.py); a process
    # that is no such worker has none. Not in api.preflight: `python -m api.preflight`
    # must not find itself imported already by the package.
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None) or {}
    event = kwargs.get("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None


class Draining:
    """The draining state of one worker process."""

    def __init__(self) -> None:
        self._master_event = _hypercorn_shutdown_event()
        self._signalled = False

    @property
    def active(self) -> bool:
        """Whether the host is stopping: this worker or its master got SIGTERM."""
        return self._signalled or (self._master_event is not None and self._master_event.is_set())

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
