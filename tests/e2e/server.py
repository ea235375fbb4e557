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

from api.settings import Settings

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
    """The environment variables that reproduce `settings` in a server process."""
    return {
        "APP_ENV": settings.app_env,
        "COOKIE_SECURE": str(settings.cookie_secure).lower(),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "JWT_SECRET_KEY": settings.jwt_secret_key,
        "ACCESS_TOKEN_TTL": str(settings.access_token_ttl),
        "REFRESH_TOKEN_TTL": str(settings.refresh_token_ttl),
        "REFRESH_REUSE_GRACE": str(settings.refresh_reuse_grace),
        "ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
        "ARGON2_TIME_COST": str(settings.argon2_time_cost),
        "HASH_WORKERS": str(settings.hash_workers),
        "HASH_QUEUE_MAX": str(settings.hash_queue_max),
        "DB_POOL_SIZE": str(settings.db_pool_size),
        "DATABASE_STATEMENT_CACHE_SIZE": str(settings.database_statement_cache_size),
        "REDIS_POOL_SIZE": str(settings.redis_pool_size),
        "DB_APPLICATION_NAME": settings.db_application_name,
        "MAX_BODY_BYTES": str(settings.max_body_bytes),
        "REQUEST_READ_TIMEOUT": str(settings.request_read_timeout),
        "RATE_LIMITS_ENABLED": str(settings.rate_limits_enabled).lower(),
        "LOGIN_RATE_LIMIT": settings.login_rate_limit,
        "REGISTER_RATE_LIMIT": settings.register_rate_limit,
        "LOGIN_FAILURE_LIMIT": settings.login_failure_limit,
        "TRUSTED_PROXY_HOPS": str(settings.trusted_proxy_hops),
        "SESSION_RETENTION": str(settings.session_retention),
        "SESSION_PURGE_INTERVAL": str(settings.session_purge_interval),
        "IPV6_RATE_LIMIT_PREFIX": str(settings.ipv6_rate_limit_prefix),
    }


class Server:
    """A Hypercorn process serving api.asgi:app on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 2, script: str | None = None) -> None:
        """Serve with Hypercorn directly, or through `script` (e.g. scripts/run) when given."""
        self.port = free_port()
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
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
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
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.output()}")

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
