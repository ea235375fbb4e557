"""A real 3-master Redis Cluster of the test's own, on free loopback ports, torn down after."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

# A node's cluster bus listens on its port + 10000.
BUS_OFFSET = 10000
MASTERS = 3


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports P free together with their bus ports P + 10000."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET < 65536 and port not in ports and _free(port + BUS_OFFSET):
            ports.append(port)
    return ports


class OwnRedisCluster:
    """Three redis-server processes joined into one cluster with redis-cli --cluster create."""

    def __init__(self) -> None:
        self.ports = _free_ports(MASTERS)
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        assert server and cli, "redis-server and redis-cli are needed (Debian: redis-server)"
        for port in self.ports:
            self._processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(self._dir / f"nodes-{port}.conf"),
                        "--dir", str(self._dir),
                        "--save", "",
                        "--appendonly", "no",
                        "--daemonize", "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in self.ports:
            self._wait(lambda c: bool(c.ping()), port, "answer PING")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        for port in self.ports:
            self._wait(lambda c: c.cluster("info")["cluster_state"] == "ok", port, "be ok")
        for port in self.ports:  # count only what the service sends from now on
            self._wait(lambda c: bool(c.config_resetstat()), port, "reset its statistics")

    def _wait(self, ready: Callable[[redis.Redis], bool], port: int, what: str) -> None:
        client = redis.Redis(port=port, decode_responses=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if ready(client):
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.05)
            raise RuntimeError(f"cluster node {port} did not {what} within 20 s")
        finally:
            client.close()

    def error_counts(self) -> dict[str, int]:
        """Error replies every node sent since start, by prefix (INFO errorstats)."""
        totals: dict[str, int] = {}
        for port in self.ports:
            client = redis.Redis(port=port, decode_responses=True)
            try:
                for name, value in client.info("errorstats").items():
                    prefix = name.removeprefix("errorstat_")
                    totals[prefix] = totals.get(prefix, 0) + int(value["count"])
            finally:
                client.close()
        return totals

    def keys_per_node(self) -> list[int]:
        """How many keys each master holds."""
        counts = []
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                counts.append(int(client.dbsize()))
            finally:
                client.close()
        return counts

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
