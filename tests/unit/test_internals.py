"""Contracts of the other libraries' internals api.edge.internals relies on: each test
fails loudly when an upgrade changes one (then fix api/edge/internals.py, and only it)."""

from __future__ import annotations

import inspect
import multiprocessing
from contextvars import ContextVar
from typing import Any

import hypercorn.asyncio.run as worker_run
import hypercorn.run
from flask import Flask

from api.edge import internals

_SEEN: ContextVar[str] = ContextVar("seen", default="unset")


async def test_sqlalchemy_greenlet_runs_sync_code_that_awaits_on_the_loop_in_one_context() -> None:
    async def coroutine(value: str) -> str:
        return f"{value}:{_SEEN.get()}"  # the task's context: set inside the greenlet

    def sync_code() -> str:
        _SEEN.set("from greenlet")
        awaiting = internals.async_to_sync(coroutine)
        return str(awaiting("awaited"))

    assert await internals.run_in_greenlet(sync_code) == "awaited:from greenlet"


def test_flask_runs_async_views_through_the_async_to_sync_hook() -> None:
    calls: list[Any] = []

    class Recording(Flask):
        def async_to_sync(self, func: Any) -> Any:
            calls.append(func)
            return lambda *args, **kwargs: "ran"

    async def view() -> str:
        return "never awaited here"

    app = Recording(__name__)
    assert app.ensure_sync(view)() == "ran"
    assert calls == [view]


def test_hypercorn_master_calls_join_exited_from_its_module() -> None:
    source = inspect.getsource(hypercorn.run.run)
    assert "_join_exited(processes)" in source, "hypercorn.run.run no longer calls _join_exited"
    params = list(inspect.signature(hypercorn.run._join_exited).parameters)
    assert params == ["processes"]
    assert internals.hypercorn_join_exited() is hypercorn.run._join_exited


def test_replacing_join_exited_is_what_the_master_calls() -> None:
    original = internals.hypercorn_join_exited()

    def replaced(processes: list[Any]) -> int:
        return 7

    try:
        internals.replace_hypercorn_join_exited(replaced)
        assert hypercorn.run._join_exited is replaced
    finally:
        internals.replace_hypercorn_join_exited(original)
    assert hypercorn.run._join_exited is original


def test_hypercorn_hands_each_worker_the_shutdown_event_as_a_keyword() -> None:
    source = inspect.getsource(hypercorn.run._populate)
    assert '"shutdown_event": shutdown_event' in source, "Hypercorn's worker kwargs changed"


def _report_event(queue: Any, **kwargs: Any) -> None:
    event = internals.hypercorn_shutdown_event()
    queue.put(event is not None and not event.is_set())


def test_a_worker_reads_the_shutdown_event_from_its_process_kwargs() -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # Held here until the worker is done: the worker opens it by name.
    shutdown_event = ctx.Event()
    worker = ctx.Process(
        target=_report_event, args=(queue,), kwargs={"shutdown_event": shutdown_event}
    )
    worker.start()
    try:
        assert queue.get(timeout=60) is True
    finally:
        worker.join(timeout=60)
        queue.close()
        queue.join_thread()
    assert internals.hypercorn_shutdown_event() is None  # this process is no worker


def test_hypercorn_workers_read_their_shutdown_wait_from_the_module_after_loading_the_app() -> None:
    for worker in (worker_run.asyncio_worker, worker_run.uvloop_worker):
        source = inspect.getsource(worker)
        loaded = source.index("load_application(")
        bound = source.index("partial(check_multiprocess_shutdown_event, shutdown_event")
        assert loaded < bound, f"{worker.__name__} binds its shutdown wait before the app loads"
    assert (
        internals.hypercorn_worker_shutdown_wait() is worker_run.check_multiprocess_shutdown_event
    )


def test_replacing_the_shutdown_wait_is_what_a_worker_binds() -> None:
    original = internals.hypercorn_worker_shutdown_wait()

    async def replaced(event: Any, sleep: Any) -> None:
        return None

    internals.replace_hypercorn_worker_shutdown_wait(replaced)
    try:
        assert worker_run.check_multiprocess_shutdown_event is replaced
    finally:
        internals.replace_hypercorn_worker_shutdown_wait(original)
