"""What the Hypercorn master does before it starts any worker (run by api.hypercorn_config).

Every use of Hypercorn's private names (through api.edge.internals) is here;
tests/unit/test_hypercorn_contract.py and tests/unit/test_internals.py fail if an
upgrade changes them (pyproject.toml bounds hypercorn below its next minor).

`python -m api.edge.preflight` runs the same settings check for scripts that start other
programs first (scripts/run migrates before it serves).

Each check ends a start that cannot work with one line and exit code 2, before any
worker starts: a bad setting, a bad PORT, a database that does not exist or refuses the
login, a database without the tables (migrations not run). An unreachable Postgres only
warns: the workers start anyway, and `/readyz` answers 503 until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from typing import Any

from sqlalchemy.exc import DBAPIError

from api.config.settings import Settings, SettingsError
from api.edge.internals import (
    hypercorn_join_exited,
    hypercorn_signal_module,
    replace_hypercorn_join_exited,
    replace_hypercorn_signal_module,
)
from api.maintenance import postgres_problems
from api.resources import build_engine
from db.errors import StoreUnavailable
from db.schema import missing_tables

EXIT_BAD_SETTINGS = 2

logger = logging.getLogger(__name__)

Handler = Callable[[int, types.FrameType | None], Any]


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this environment, or exit 2 with their one-line complaint on stderr."""
    try:
        return Settings.from_env(environ)
    except SettingsError as error:
        # One line that names the variable and the fix: no traceback to scroll past.
        print(f"auth-api: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def _refuse(line: str) -> None:
    # One line that names the cause and the fix: no traceback to scroll past.
    print(f"auth-api: {line}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_SETTINGS)


def port_or_exit(environ: Mapping[str, str] | None = None) -> None:
    """Exit 2 with one line when PORT (read by the Procfile and scripts/run) is set but
    is no port number; Hypercorn would otherwise fail to bind with a traceback."""
    port = (os.environ if environ is None else environ).get("PORT")
    if port is None or (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return
    _refuse(f"PORT={port!r} is not a port: set PORT to a number from 1 to 65535, e.g. 8000")


def database_or_exit(settings: Settings) -> None:
    """Exit 2 with one line when Postgres answers but cannot serve this app: no such
    database, a refused login, or tables missing (`alembic upgrade head` not run)."""
    try:
        missing = asyncio.run(_missing_tables(settings))
    except StoreUnavailable:
        print(
            f"auth-api: {postgres_problems.unreachable(settings.database_url)}; starting "
            "anyway, /readyz answers 503 until it answers",
            file=sys.stderr,
        )
        return
    except DBAPIError as error:
        _refuse(postgres_problems.refusal(error, settings.database_url))
    if missing:
        _refuse(postgres_problems.missing_tables(settings.database_url, missing))


async def _missing_tables(settings: Settings) -> list[str]:
    engine = build_engine(settings, command="preflight", pool_size=1)
    try:
        return await missing_tables(engine)
    finally:
        await engine.dispose()


def exit_non_zero_when_workers_die() -> None:
    """Make the Hypercorn master exit non-zero after a worker died, as supervisors expect.

    Hypercorn 0.18 records a dead worker's exit code, then overwrites it with the result
    of a second join over the workers left (pgjones/hypercorn#269), so it exits 0.

    A worker ended by SIGTERM itself is no failure: it takes SIGTERM as the signal to
    drain from the moment it listens (api.edge.draining), so one that died of it was still
    starting or had already finished, with no request in hand; a stop signalled to every
    process of the service (systemd's control-group kill) reaches such workers too.
    """
    join_exited = hypercorn_join_exited()
    first_failure = 0

    def join_exited_keeping_failures(processes: list[BaseProcess]) -> int:
        nonlocal first_failure
        before = list(processes)
        join_exited(processes)  # always called: it reaps the dead workers from `processes`
        for reaped in (p for p in before if p not in processes):
            if reaped.exitcode != -signal.SIGTERM:
                first_failure = first_failure or reaped.exitcode or 0
        return first_failure

    replace_hypercorn_join_exited(join_exited_keeping_failures)


class SignalsOffSignalContext(types.ModuleType):
    """The `signal` module, except that the handlers installed through it run on a thread.

    Hypercorn's master answers SIGTERM by setting a multiprocessing Event, whose lock is
    not re-entrant: a second signal arriving while the handler holds it re-enters the
    handler, which waits for ever on the lock its own outer frame holds (and every worker,
    reading the Event, waits with it). Here the handler proper only writes the signal's
    number to a pipe, which is safe at any moment; one thread reads the pipe and runs the
    real handlers one at a time, so they never interrupt themselves.
    """

    def __init__(self) -> None:
        super().__init__(signal.__name__, signal.__doc__)
        self._handlers: dict[int, Handler] = {}
        self._read, self._write = os.pipe()
        # A signal never waits: with the pipe full, the thread has that signal to read.
        os.set_blocking(self._write, False)
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(signal, name)

    def signal(self, signalnum: int, handler: Any) -> Any:
        """Install `handler` for `signalnum`; a callable one runs on this module's thread."""
        if not callable(handler):
            self._handlers.pop(signalnum, None)
            return signal.signal(signalnum, handler)
        self._handlers[signalnum] = handler
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run_handlers, name="signal-handlers", daemon=True
            )
            self._thread.start()
        return signal.signal(signalnum, self._note)

    def _note(self, signalnum: int, _frame: types.FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, bytes([signalnum]))

    def _run_handlers(self) -> None:
        while True:
            # A storm of one signal is one call: the handlers are idempotent.
            for signalnum in dict.fromkeys(os.read(self._read, 512)):
                handler = self._handlers.get(signalnum)
                if handler is None:
                    continue
                try:
                    handler(signalnum, None)
                except Exception:
                    logger.exception("the handler of signal %d failed", signalnum)


def run_signal_handlers_off_signal_context() -> None:
    """Make the signal handlers Hypercorn's master installs run on a thread, never inside
    a signal (see SignalsOffSignalContext): any number of SIGTERMs stops it."""
    if not isinstance(hypercorn_signal_module(), SignalsOffSignalContext):
        replace_hypercorn_signal_module(SignalsOffSignalContext())


if __name__ == "__main__":
    settings_or_exit()
    port_or_exit()
