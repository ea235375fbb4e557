"""Other libraries' internals the service relies on, in one place.

Each is pinned by a contract test (tests/unit/test_internals.py) that fails loudly when
an upgrade changes it, and where the contract is private, pyproject.toml bounds the
library's version from above.

- SQLAlchemy's greenlet bridge (`sqlalchemy.util.greenlet_spawn` / `await_`, which its
  asyncio layer is built on but does not document for others): Flask's sync code runs
  in a greenlet on the worker's loop, and an async view's coroutine is awaited by the
  greenlet's parent, in the request's own task; the greenlet shares the task's context
  variables. Bounded: sqlalchemy < 2.2.
- Flask's `async_to_sync` hook (public, documented as the one to override): how Flask
  runs an `async def` view; AuthApp points it at `async_to_sync` below.
- Hypercorn's master (private; bounded: hypercorn < 0.19): the module-level function
  `hypercorn.run._join_exited` that `run()` calls to reap dead workers, and the shutdown
  event it hands each worker as the `shutdown_event` keyword of the process's target,
  read back through `multiprocessing.current_process()._kwargs`; and the module global
  `signal` through which `run()` installs the master's handlers (api.edge.preflight
  replaces it, so a storm of stop signals can't deadlock the master).
- Hypercorn's worker (private; same bound): `asyncio_worker` / `uvloop_worker` build
  the wait for the master's stop from the module global
  `hypercorn.asyncio.run.check_multiprocess_shutdown_event`, after loading the app
  (api.edge.draining wraps it, so a worker keeps accepting while a balancer notices).
- Hypercorn's master passes each worker its listening socket through multiprocessing's
  pickling, whose per-type reducers (`ForkingPickler._extra_reducers`, private) let
  api.edge.listening hand each worker a socket of its own.
"""

from __future__ import annotations

import functools
import multiprocessing
import types
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import hypercorn.asyncio.run
import hypercorn.run
from sqlalchemy.util import await_, greenlet_spawn

T = TypeVar("T")
JoinExited = Callable[[list[BaseProcess]], int]
ShutdownWait = Callable[[Any, Callable[[float], Awaitable[Any]]], Awaitable[None]]


def run_in_greenlet(fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """Run sync `fn(*args)` in a greenlet on the running loop; it may await through
    `async_to_sync`'s wrappers."""
    return greenlet_spawn(fn, *args)


def async_to_sync(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Wrap a coroutine function so Flask, running in the bridge's greenlet, awaits it on
    the worker's loop: the greenlet switches to its parent, which awaits the coroutine in
    the request's own task and switches back with the result."""

    @functools.wraps(func)
    def run_on_worker_loop(*args: Any, **kwargs: Any) -> Any:
        return await_(func(*args, **kwargs))

    return run_on_worker_loop


def hypercorn_shutdown_event() -> Any:
    """The event Hypercorn's master sets to stop its workers; None in any other process."""
    # Hypercorn hands each spawned worker its master's shutdown event as a keyword
    # argument of the process's target; a process that is no such worker has none.
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None) or {}
    event = kwargs.get("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None


def hypercorn_join_exited() -> JoinExited:
    """The function Hypercorn's master calls to reap dead workers and take an exit code."""
    join_exited: JoinExited = hypercorn.run._join_exited
    return join_exited


def replace_hypercorn_join_exited(join_exited: JoinExited) -> None:
    """Have Hypercorn's master call `join_exited` instead (set before `run()` starts)."""
    hypercorn.run._join_exited = join_exited  # type: ignore[assignment]


def hypercorn_signal_module() -> types.ModuleType:
    """The `signal` module Hypercorn's `run()` installs the master's handlers through."""
    module: types.ModuleType = vars(hypercorn.run)["signal"]
    return module


def replace_hypercorn_signal_module(module: types.ModuleType) -> None:
    """Have Hypercorn's `run()` install its handlers through `module` (set before it runs)."""
    # run() reads the module's global `signal` each time it installs its handlers.
    vars(hypercorn.run)["signal"] = module


def hypercorn_worker_shutdown_wait() -> ShutdownWait:
    """What a Hypercorn worker awaits before it stops accepting: the master's shutdown event."""
    wait: ShutdownWait = vars(hypercorn.asyncio.run)["check_multiprocess_shutdown_event"]
    return wait


def replace_hypercorn_worker_shutdown_wait(wait: ShutdownWait) -> None:
    """Have this worker await `wait` instead (set while the app loads, before it serves)."""
    # asyncio_worker and uvloop_worker read the module global after load_application().
    vars(hypercorn.asyncio.run)["check_multiprocess_shutdown_event"] = wait
