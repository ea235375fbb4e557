"""Start the real Hypercorn server as a subprocess, the way the Procfile does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_PROBLEMS = (
    "Traceback",
    "Event loop is closed",
    "Unclosed",
    "unclosed",
    "Task was destroyed",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` in a server process (every one)."""
    return settings.to_env()


class Server:
    """A Hypercorn process serving api.asgi:app on a free loopback port."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 2,
        script: str | None = None,
        own_group: bool = False,
        port: int | None = None,
    ) -> None:
        """Serve with Hypercorn directly, or through `script` (e.g. scripts/run) when given;
        `own_group` makes the server a process group of its own (a service's cgroup); `port`
        when its settings must name its address before it starts (a free one otherwise)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / ".pytest_cache" / f"server-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = self.log_path.open("w+")
        argv = [
            sys.executable,
            "-m",
            "hypercorn",
            "--config",
            "python:api.hypercorn_config",
            "api.asgi:app",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
        ]
        if script is not None:
            argv = [str(ROOT / script)]
            env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
            env["WEB_CONCURRENCY"] = str(workers)
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 90.0) -> None:
        # Generous: on a shared, loaded machine two workers take well over 30 s to import
        # and open their pools; a server that never answers still fails the test.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        # stop() closes and removes the log: take what the server said first.
        output = self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{output}")

    def worker_pids(self) -> list[int]:
        """The worker processes Hypercorn's master started (not its resource tracker)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and b"spawn_main" in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> str:
        """Stop gracefully and return everything the server printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        output = self.output()
        self._log.close()
        self.log_path.unlink(missing_ok=True)
        return output
