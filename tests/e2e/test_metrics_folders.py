"""Each served instance keeps its workers' metrics in a private folder of its own,
made fresh at start and removed at exit; the labels of /metrics come from closed sets."""

from __future__ import annotations

import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.config.settings import Settings
from api.edge.metrics import METHODS
from tests.e2e.server import Server, settings_env


def metrics_folder(pid: int) -> str:
    """PROMETHEUS_MULTIPROC_DIR as the process `pid` was started with."""
    variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for variable in variables:
        name, _, value = variable.partition(b"=")
        if name == b"PROMETHEUS_MULTIPROC_DIR":
            return value.decode()
    raise AssertionError(f"worker {pid} has no PROMETHEUS_MULTIPROC_DIR")


@pytest.fixture
def two_servers(e2e_settings: Settings) -> Iterator[list[Server]]:
    servers = [Server(settings_env(e2e_settings), workers=2) for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            if server.process.returncode is None:  # the test stops them itself
                server.stop()


def test_each_instance_has_a_private_fresh_folder_removed_at_exit(
    two_servers: list[Server],
) -> None:
    folders = []
    for server in two_servers:
        for _ in range(3):
            assert httpx.get(server.url + "/healthz").status_code == 200
        workers = server.worker_pids()
        names = {metrics_folder(pid) for pid in workers}
        assert len(workers) == 2 and len(names) == 1, names
        folder = Path(names.pop())
        mode = stat.S_IMODE(folder.stat().st_mode)
        # Fresh: only files of this instance's own workers (prometheus names them by pid).
        pids = {
            int(m.group(1)) for f in folder.iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))
        }
        print(f"{folder}: mode {mode:o}, files of pids {sorted(pids)}, workers {workers}")
        assert mode == 0o700
        assert pids and pids <= set(workers)
        folders.append(folder)
    assert folders[0] != folders[1]
    for server in two_servers:
        server.stop()
    left = [folder for folder in folders if folder.exists()]
    print(f"folders left after both servers exited: {left}")
    assert not left


def test_a_folder_named_by_the_operator_is_used_and_kept(
    e2e_settings: Settings, tmp_path: Path
) -> None:
    named = tmp_path / "metrics"
    server = Server({**settings_env(e2e_settings), "PROMETHEUS_MULTIPROC_DIR": str(named)})
    try:
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert {metrics_folder(pid) for pid in server.worker_pids()} == {str(named)}
        assert any(named.glob("*.db"))
    finally:
        server.stop()
    assert named.is_dir()


def test_made_up_methods_do_not_grow_the_served_series(server: Server) -> None:
    def series() -> list[str]:
        text = httpx.get(server.url + "/metrics").text
        return [line for line in text.splitlines() if line.startswith("auth_api_")]

    with httpx.Client(base_url=server.url) as http:
        http.request("BREW", "/healthz")
        series()  # /metrics counts itself once it has answered
        before = series()
        for _ in range(300):
            http.request(f"X-{uuid.uuid4().hex[:12]}", "/healthz")
        after = series()
    methods = set(re.findall(r'method="([^"]*)"', "\n".join(after)))
    print(f"served series: {len(before)} before 300 made-up methods, {len(after)} after")
    print(f"served method labels: {sorted(methods)}")
    assert len(after) == len(before)
    assert methods <= {*METHODS, "other"}
