"""CPU time of a Hypercorn server's processes, read from /proc: what a request costs the
workers, a steadier figure than req/s on a shared machine; and how much of it their main
threads (the event loops) spent, the rest being their other threads' (the hashing)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    cpu_seconds: float  # utime + stime


@dataclass(frozen=True)
class CpuSample:
    master: float
    workers: dict[int, float]
    loops: dict[int, float]  # each worker's main thread alone: its event loop


@dataclass(frozen=True)
class CpuPerRequest:
    worker_ms: float
    master_ms: float
    loop_ms: float  # the part of worker_ms its main threads spent


def parse_stat(text: str) -> ProcStat:
    """ppid and user + system CPU seconds from the text of /proc/<pid>/stat."""
    # The command name (field 2) is in parentheses and may itself hold spaces and ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime and stime fields 14 and 15.
    return ProcStat(
        ppid=int(fields[1]), cpu_seconds=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    )


def read_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat:
    """The /proc/<pid>/stat figures of one process."""
    return parse_stat((proc / str(pid) / "stat").read_text())


def read_main_thread_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat:
    """The /proc figures of a process's main thread alone (its task of the same id)."""
    return parse_stat((proc / str(pid) / "task" / str(pid) / "stat").read_text())


def sample(master: int, workers: list[int], proc: Path = Path("/proc")) -> CpuSample:
    """The CPU seconds used so far by the master, by each of `workers` and by each one's
    main thread."""
    return CpuSample(
        master=read_stat(master, proc).cpu_seconds,
        workers={pid: read_stat(pid, proc).cpu_seconds for pid in workers},
        loops={pid: read_main_thread_stat(pid, proc).cpu_seconds for pid in workers},
    )


def per_request(before: CpuSample, after: CpuSample, requests: int) -> CpuPerRequest:
    """Milliseconds of CPU per request between two samples of the same processes."""
    if before.workers.keys() != after.workers.keys():
        raise ValueError(
            f"the workers changed during the run: {sorted(before.workers)} -> "
            f"{sorted(after.workers)}; a worker died or restarted, so its CPU time is lost"
        )
    if requests <= 0:
        raise ValueError("no request completed, so there is no CPU time per request")
    workers = sum(after.workers[pid] - before.workers[pid] for pid in before.workers)
    loops = sum(after.loops[pid] - before.loops[pid] for pid in before.workers)
    return CpuPerRequest(
        worker_ms=1000 * workers / requests,
        master_ms=1000 * (after.master - before.master) / requests,
        loop_ms=1000 * loops / requests,
    )


def shares(before: CpuSample, after: CpuSample) -> list[float]:
    """Each worker's share of the workers' CPU time between two samples, by pid."""
    used = [after.workers[pid] - before.workers[pid] for pid in sorted(before.workers)]
    total = sum(used) or 1.0
    return [u / total for u in used]


def wait_idle(
    master: int,
    workers: list[int],
    *,
    quiet_share: float = 0.05,
    interval: float = 0.5,
    timeout: float = 30,
    proc: Path = Path("/proc"),
) -> bool:
    """Wait until the workers use less than `quiet_share` of a core over `interval`, so the
    work a previous run left queued (a warm-up's logins) is not counted in the next one.
    False when they were still busy at `timeout`."""
    deadline = time.monotonic() + timeout
    last = sample(master, workers, proc)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = sample(master, workers, proc)
        busy = sum(now.workers[pid] - last.workers[pid] for pid in workers)
        if busy <= quiet_share * interval:
            return True
        last = now
    return False
