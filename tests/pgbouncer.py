"""A PgBouncer of the test's own in transaction pooling mode, in front of the test database.

Debian's `pgbouncer` is installed when it is missing and we are root; otherwise the tests
that need it are skipped, saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.server import free_port
from tests.listening import wait_until_listening

DATABASE_ALIAS = "auth_tests_via_pgbouncer"


def pgbouncer_binary() -> str:
    """The path of pgbouncer, installing Debian's package first when missing and root.

    Skips the calling test when it can be neither found nor installed.
    """
    found = shutil.which("pgbouncer")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("pgbouncer is not installed: apt-get install pgbouncer (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "pgbouncer"]):
        if subprocess.run(command, env=env, capture_output=True, timeout=600).returncode:
            pytest.skip("pgbouncer is not installed and apt-get could not install it")
    found = shutil.which("pgbouncer")
    if not found:
        pytest.skip("apt-get installed pgbouncer, but it is not on PATH")
    return found


class OwnPgBouncer:
    """pgbouncer on a free loopback port, pooling `database_url`'s database per transaction."""

    def __init__(self, database_url: str, server_pool_size: int = 4) -> None:
        self.port = free_port()
        target = urlsplit(database_url)
        self._dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        user = target.username or "postgres"
        (self._dir / "users.txt").write_text(f'"{user}" ""\n')
        (self._dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{DATABASE_ALIAS} = host={target.hostname} port={target.port or 5432} "
            f"dbname={target.path.lstrip('/')}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self._dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {server_pool_size}\n"
            "max_client_conn = 200\n"
            # Statements prepared under unique names would pile up on server connections.
            "server_reset_query = DISCARD ALL\n"
            "server_reset_query_always = 1\n"
            f"logfile = {self._dir / 'pgbouncer.log'}\n"
            f"pidfile = {self._dir / 'pgbouncer.pid'}\n"
        )
        self.url = urlunsplit(
            target._replace(netloc=f"{user}@127.0.0.1:{self.port}", path=f"/{DATABASE_ALIAS}")
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [pgbouncer_binary(), str(self._dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            shutil.chown(self._dir, "postgres")
            for entry in self._dir.iterdir():
                shutil.chown(entry, "postgres")
            argv[1:1] = ["-u", "postgres"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_listening(self._process, self.port, "pgbouncer", self.log, seconds=15)

    def log(self) -> str:
        path = self._dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)
