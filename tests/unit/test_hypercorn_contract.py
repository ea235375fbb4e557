"""What api.edge.preflight relies on in Hypercorn's private code, and its signal module that runs
the master's handlers off signal context: an upgrade of Hypercorn that changes any of it
fails here, before a server that cannot stop ships."""

from __future__ import annotations

import inspect
import multiprocessing
import os
import signal
import threading
import time
import types
from collections.abc import Callable

import hypercorn.asyncio.run
import hypercorn.run

from api.edge import preflight


def _nested(function: Callable[..., object], name: str) -> types.CodeType:
    return next(
        const
        for const in function.__code__.co_consts
        if isinstance(const, types.CodeType) and const.co_name == name
    )


def test_the_master_installs_its_stop_handler_through_its_module_global_signal() -> None:
    assert isinstance(vars(hypercorn.run)["signal"], types.ModuleType)
    assert "signal" in hypercorn.run.run.__code__.co_names
    # The handler sets the event and ends the loop: nothing a thread cannot do for it.
    shutdown = _nested(hypercorn.run.run, "shutdown")
    assert set(shutdown.co_freevars) == {"shutdown_event", "active"}
    assert "set" in shutdown.co_names


def test_the_master_reaps_its_workers_through_join_exited() -> None:
    assert list(inspect.signature(hypercorn.run._join_exited).parameters) == ["processes"]
    assert "_join_exited" in hypercorn.run.run.__code__.co_names


def test_each_worker_gets_the_masters_shutdown_event_as_a_keyword_argument() -> None:
    assert "shutdown_event" in inspect.signature(hypercorn.asyncio.run.uvloop_worker).parameters
    keys = [c for c in hypercorn.run._populate.__code__.co_consts if isinstance(c, tuple)]
    assert any("shutdown_event" in k for k in keys), keys


def test_the_signal_module_stand_in_passes_everything_else_through() -> None:
    stand_in = preflight.SignalsOffSignalContext()
    assert stand_in.SIGTERM == signal.SIGTERM
    assert stand_in.SIG_IGN is signal.SIG_IGN
    assert hasattr(stand_in, "SIGBREAK") == hasattr(signal, "SIGBREAK")


def _storm_a_handler_that_must_not_re_enter(report: multiprocessing.SimpleQueue[str]) -> None:
    # In a child process: the stand-in's thread and the signal handler are its own.
    held = threading.Lock()  # not re-entrant, like the lock of Hypercorn's event
    calls: list[str] = []

    def handler(signalnum: int, _frame: object) -> None:
        if not held.acquire(blocking=False):
            calls.append("re-entered")
            return
        try:
            calls.append(threading.current_thread().name)
            time.sleep(0.01)  # a window for the storm to arrive in
        finally:
            held.release()

    preflight.SignalsOffSignalContext().signal(signal.SIGUSR1, handler)
    for _ in range(200):
        os.kill(os.getpid(), signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the last signals' calls
    report.put(",".join(sorted(set(calls))))


def test_a_storm_of_signals_runs_the_handler_on_a_thread_never_inside_itself() -> None:
    context = multiprocessing.get_context("fork")
    report: multiprocessing.SimpleQueue[str] = context.SimpleQueue()
    child = context.Process(target=_storm_a_handler_that_must_not_re_enter, args=(report,))  # type: ignore[attr-defined]
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert report.get() == "signal-handlers"
