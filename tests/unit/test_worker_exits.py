"""How the Hypercorn master (as api.edge.preflight patches it) reads its workers' exit codes."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

import hypercorn.run
import pytest

from api.edge import preflight


def _exit_with(code: int) -> None:
    os._exit(code)


def _die_of_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def join_exited() -> Iterator[None]:
    original = hypercorn.run._join_exited
    preflight.exit_non_zero_when_workers_die()
    yield
    hypercorn.run._join_exited = original


def _ended(*targets: object) -> list[BaseProcess]:
    context = multiprocessing.get_context("fork")
    processes: list[BaseProcess] = [context.Process(target=t) for t in targets]  # type: ignore[attr-defined]
    for process in processes:
        process.start()
        process.join()
    return processes


def test_a_worker_ended_by_sigterm_is_not_a_failure(join_exited: None) -> None:
    processes = _ended(_die_of_sigterm, lambda: _exit_with(0), _die_of_sigterm)
    codes = [p.exitcode for p in processes]
    exit_code = hypercorn.run._join_exited(processes)
    print(f"\nworkers' exit codes {codes}: the master's exit code {exit_code}")
    assert codes == [-signal.SIGTERM, 0, -signal.SIGTERM]
    assert exit_code == 0
    assert processes == []


def test_a_worker_that_failed_makes_the_master_fail_even_after_sigterm_ends(
    join_exited: None,
) -> None:
    first = _ended(lambda: _exit_with(3), _die_of_sigterm)
    assert hypercorn.run._join_exited(first) == 3
    # Later joins, with clean exits only, keep the failure (pgjones/hypercorn#269).
    assert hypercorn.run._join_exited(_ended(lambda: _exit_with(0))) == 3
