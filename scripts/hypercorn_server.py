"""Start the service's Hypercorn as a subprocess, the way the Procfile does, and stop it.

The one starter for the e2e tests (tests/e2e/server.py), scripts/faults.py and
scripts/bench: `hypercorn --config python:api.hypercorn_config api.asgi:app` on a
loopback port, returned once it answers, stopped with SIGTERM and killed after a bound.
scripts/bench also starts its baselines' servers (gunicorn, uvicorn) through it.

It lives in scripts/ rather than in the package: the package (api, db) is what a
deployment installs and runs, and launching and polling a server is a development
tool's job. Tests already import from scripts/ (scripts.readme_settings,
scripts.benchmarks), while scripts/ must not import from tests/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICE_APP = "api.asgi:app"
# Generous: on a shared, loaded machine two workers take well over 30 s to import and
# open their pools; a server that never answers still fails.
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
# Hypercorn (and uvicorn) start their workers with multiprocessing's spawn context; the
# master's other child, multiprocessing's resource tracker, serves no requests.
SPAWNED_WORKER = b"spawn_main"


class ServerError(RuntimeError):
    """The server could not be started: its port was taken, it exited or never answered."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hypercorn_command(app: str, port: int, workers: int) -> list[str]:
    """The Procfile's command line, serving `app` on 127.0.0.1:`port`."""
    return [
        sys.executable, "-m", "hypercorn",
        "--config", "python:api.hypercorn_config",
        app,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
    ]  # fmt: skip


def worker_pids(
    master: int, proc: Path = Path("/proc"), mark: bytes | None = SPAWNED_WORKER
) -> list[int]:
    """The workers of `master`: its children whose command line holds `mark` (by default
    those multiprocessing's spawn started, as Hypercorn's are); every child when `mark` is
    None (gunicorn forks its workers and has no other children)."""
    workers = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the process ended while we looked
        # The command name (field 2) is in parentheses and may itself hold spaces and ')'.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == master and (mark is None or mark in cmdline):
            workers.append(int(entry.name))
    return sorted(workers)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class Server:
    """A Hypercorn process on a loopback port, answering when the constructor returns."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 2,
        *,
        script: str | None = None,
        own_group: bool = False,
        app: str = SERVICE_APP,
        port: int | None = None,
        cwd: Path = ROOT,
        ready_path: str = "/healthz",
        ready_timeout: float = READY_TIMEOUT,
        command: Callable[[int], list[str]] | None = None,
        worker_mark: bytes | None = SPAWNED_WORKER,
    ) -> None:
        """Serve `app` with `env` over this process's environment, once 200 at `ready_path`.

        `script` (e.g. scripts/run) serves through that script instead, handing it HOST,
        PORT and WEB_CONCURRENCY; `own_group` makes the server a process group of its own
        (a service's cgroup); `port` is a free one unless given; `cwd` is the tree whose
        code it serves. `command` makes the command line of another server for a port
        (then `app` and `script` are ignored); `worker_mark` tells its workers apart from
        its other children (see worker_pids).

        Raises:
            ServerError: something already listens on `port`, or the server exited or did not answer
                within `ready_timeout` seconds (with everything it printed).
        """
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        if port is not None and _listening(self.port):
            raise ServerError(f"something already listens on {self.url}: choose another port")
        argv = hypercorn_command(app, self.port, workers)
        self._worker_mark = worker_mark
        if command is not None:
            argv = command(self.port)
        elif script is not None:
            argv = [str(cwd / script)]
            env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
            env["WEB_CONCURRENCY"] = str(workers)
        log, name = tempfile.mkstemp(prefix=f"hypercorn-{self.port}-", suffix=".log")
        self.log_path = Path(name)
        self._output: str | None = None  # all of it, once stopped
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=own_group,
            )
        except BaseException:
            self.log_path.unlink()
            raise
        finally:
            os.close(log)  # the server has its own copy
        self._name = f"{' '.join(argv) if command else script or app} ({cwd})"
        self._wait_until_ready(ready_path, ready_timeout)

    def _answers(self, path: str) -> bool:
        try:
            return httpx.get(self.url + path, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _wait_until_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self._name} exited at start-up:\n{self.stop()}")
            if self._answers(path):
                return
            time.sleep(0.1)
        raise ServerError(
            f"{self._name} did not answer {path} within {timeout:g} s:\n{self.stop()}"
        )

    def worker_pids(self) -> list[int]:
        """The worker processes the master started (not its resource tracker)."""
        return worker_pids(self.process.pid, mark=self._worker_mark)

    def output(self) -> str:
        """Everything the server printed so far."""
        if self._output is not None:
            return self._output
        return self.log_path.read_bytes().decode(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> str:
        """Stop gracefully (SIGTERM; killed after `timeout` s) and return everything the
        server printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._output is None:
            self._output = self.output()
            self.log_path.unlink()
        return self._output

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
