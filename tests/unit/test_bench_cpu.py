"""scripts/benchmarks/cpu.py: CPU time of a server's workers read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.benchmarks.cpu import (
    CLOCK_TICKS,
    CpuSample,
    parse_stat,
    per_request,
    read_stat,
    sample,
    wait_idle,
)
from scripts.hypercorn_server import worker_pids

WORKER = b"/venv/bin/python\0-c\0from multiprocessing.spawn import spawn_main; spawn_main()\0"
TRACKER = b"/venv/bin/python\0-c\0from multiprocessing.resource_tracker import main;main(4)\0"


def _stat(pid: int, comm: str, ppid: int, utime: int, stime: int) -> str:
    # Fields 3 to 52 of proc(5): state, ppid, ..., utime (14), stime (15), ...
    rest = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), *["0"] * 37]
    return f"{pid} ({comm}) {' '.join(rest)}\n"


@contextmanager
def _python_child(code: str, *, ready: str) -> Iterator[subprocess.Popen[str]]:
    """A Python process running `code`, once it has printed `ready`; killed afterwards."""
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            assert p.stdout.readline() == ready + "\n"
            yield p
        finally:
            p.kill()


def _fake_proc(tmp_path: Path, processes: dict[int, tuple[int, int, bytes]]) -> Path:
    """A /proc with `pid: (ppid, ticks, cmdline)` entries, and a non-process entry."""
    (tmp_path / "self").mkdir()
    for pid, (ppid, ticks, cmdline) in processes.items():
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / "stat").write_text(_stat(pid, "python", ppid, ticks, 2 * ticks))
        (folder / "cmdline").write_bytes(cmdline)
        # Its main thread spent a tenth of its ticks; other threads the rest.
        (folder / "task" / str(pid)).mkdir(parents=True)
        main_thread = _stat(pid, "python", ppid, ticks // 10, 2 * (ticks // 10))
        (folder / "task" / str(pid) / "stat").write_text(main_thread)
    return tmp_path


def test_parse_stat_reads_ppid_and_user_plus_system_time_past_a_hostile_name() -> None:
    # A command name may hold spaces and parentheses: fields count from the last ')'.
    stat = parse_stat(_stat(4242, "evil) S 1 2 (name", 77, 250, 50))
    assert stat.ppid == 77
    assert stat.cpu_seconds == pytest.approx(300 / CLOCK_TICKS)


def test_read_stat_of_this_process_names_its_parent() -> None:
    stat = read_stat(os.getpid())
    assert stat.ppid == os.getppid()
    assert stat.cpu_seconds > 0


def test_worker_pids_are_the_spawned_children_only(tmp_path: Path) -> None:
    proc = _fake_proc(
        tmp_path,
        {
            10: (1, 5, b"python -m hypercorn"),
            11: (10, 100, WORKER),
            12: (10, 1, TRACKER),
            13: (10, 100, WORKER),
            14: (99, 100, WORKER),  # someone else's worker
        },
    )
    print(f"workers of 10 in the fake /proc: {worker_pids(10, proc)}")
    assert worker_pids(10, proc) == [11, 13]


def test_worker_pids_without_a_mark_are_every_child(tmp_path: Path) -> None:
    # gunicorn forks its workers: their command line is the master's.
    gunicorn = b"/venv/bin/python\0-m\0gunicorn\0"
    proc = _fake_proc(
        tmp_path,
        {10: (1, 5, gunicorn), 11: (10, 100, gunicorn), 12: (10, 90, gunicorn), 14: (99, 1, b"x")},
    )
    assert worker_pids(10, proc, mark=None) == [11, 12]
    assert worker_pids(10, proc) == []


def test_worker_pids_of_a_real_process_finds_its_spawned_children() -> None:
    # A parent whose two children carry multiprocessing's mark on their command line.
    child = "import time; time.sleep(30)  # spawn_main"
    parent = (
        "import subprocess, sys, time\n"
        f"kids = [subprocess.Popen([sys.executable, '-c', {child!r}]) for _ in range(2)]\n"
        "print('up', flush=True)\n"
        "time.sleep(30)\n"
    )
    with _python_child(parent, ready="up") as p:
        try:
            found = worker_pids(p.pid)
            print(f"children found: {len(found)}")
            assert len(found) == 2
            assert all(read_stat(pid).ppid == p.pid for pid in found)
        finally:
            for pid in worker_pids(p.pid):
                os.kill(pid, signal.SIGKILL)


def test_per_request_sums_the_workers_and_keeps_the_master_apart(tmp_path: Path) -> None:
    before = CpuSample(master=1.0, workers={11: 2.0, 13: 3.0}, loops={11: 1.0, 13: 0.5})
    after = CpuSample(master=1.01, workers={11: 4.0, 13: 4.0}, loops={11: 1.25, 13: 0.75})
    figures = per_request(before, after, requests=1000)
    assert figures.worker_ms == pytest.approx(3.0)  # (2 s + 1 s) / 1000 requests
    assert figures.master_ms == pytest.approx(0.01)
    assert figures.loop_ms == pytest.approx(0.5)  # (0.25 s + 0.25 s) of the main threads


def test_per_request_refuses_a_changed_worker_set() -> None:
    before = CpuSample(master=0, workers={11: 1.0, 13: 1.0}, loops={11: 0.5, 13: 0.5})
    after = CpuSample(master=0, workers={11: 2.0, 14: 0.1}, loops={11: 1.0, 14: 0.1})
    with pytest.raises(ValueError, match="workers changed"):
        per_request(before, after, requests=10)


def test_per_request_refuses_no_requests() -> None:
    same = CpuSample(master=0, workers={11: 1.0}, loops={11: 0.5})
    with pytest.raises(ValueError, match="no request"):
        per_request(same, same, requests=0)


def test_sample_reads_master_and_workers(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 5, b"hypercorn"), 11: (10, 100, WORKER)})
    taken = sample(10, [11], proc)
    assert taken.master == pytest.approx(15 / CLOCK_TICKS)
    assert taken.workers == {11: pytest.approx(300 / CLOCK_TICKS)}
    assert taken.loops == {11: pytest.approx(30 / CLOCK_TICKS)}


def test_the_main_thread_of_a_process_busy_in_another_thread_spent_little() -> None:
    # A child that burns CPU in a second thread while its main thread sleeps.
    burner = (
        "import threading, time\n"
        "def burn():\n"
        "    end = time.process_time() + 0.5\n"
        "    while time.process_time() < end: pass\n"
        "thread = threading.Thread(target=burn); thread.start(); thread.join()\n"
        "print('done', flush=True); time.sleep(30)\n"
    )
    with _python_child(burner, ready="done") as p:
        taken = sample(os.getpid(), [p.pid])
    print(f"process {taken.workers[p.pid]:.2f} s, main thread {taken.loops[p.pid]:.2f} s")
    assert taken.workers[p.pid] >= 0.5
    assert taken.loops[p.pid] < taken.workers[p.pid] - 0.4


def test_wait_idle_returns_once_the_workers_use_no_cpu(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 5, b"hypercorn"), 11: (10, 100, WORKER)})
    assert wait_idle(10, [11], interval=0.01, timeout=5, proc=proc)
