"""Graceful restarts of the real 2-worker server: after SIGTERM, a request already in flight
completes, /readyz answers 503 to whatever it still serves, the pools close and the
master exits 0; also when every process gets the signal (systemd's control-group kill)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from dataclasses import replace

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.raw_http import Connection, head
from tests.e2e.server import SHUTDOWN_PROBLEMS, Server, settings_env
from tests.e2e.test_metrics_folders import metrics_folder

pytestmark = pytest.mark.e2e

# A bound on waiting for the idle worker to drain and exit, only reached on a hang.
WORKER_EXIT = 15.0


def _signal_every_process(server: Server) -> None:
    pids = server.worker_pids()
    assert len(pids) == 2, pids
    for pid in [server.process.pid, *pids]:
        os.kill(pid, signal.SIGTERM)


def _signal_master(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)


def _one_worker_exited(server: Server, workers: list[int]) -> None:
    """Wait until one of `workers` has exited: draining has begun in every worker (they
    poll the master's event together), and the master has seen a worker leave."""
    deadline = time.monotonic() + WORKER_EXIT
    while set(server.worker_pids()) >= set(workers):
        assert time.monotonic() < deadline, "no worker exited after SIGTERM"
        time.sleep(0.05)


async def _connections_named(name: str, pg: asyncpg.Connection, redis_url: str) -> tuple[int, int]:
    postgres = await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name
    )
    redis = Redis.from_url(redis_url)
    try:
        clients = await redis.client_list()
    finally:
        await redis.aclose()
    return int(postgres), sum(1 for c in clients if c.get("name") == name)


@pytest.mark.parametrize("send_sigterm", [_signal_master, _signal_every_process])
async def test_a_login_in_flight_at_sigterm_completes_and_the_server_exits_zero(
    send_sigterm: object,
    e2e_settings: Settings,
    users: Users,
    pg: asyncpg.Connection,
    redis_url: str,
) -> None:
    name = f"auth-api-drain-{uuid.uuid4().hex[:8]}"
    server = Server(settings_env(replace(e2e_settings, db_application_name=name)), workers=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            email = await users.register(http)
            assert (await http.get("/readyz")).status_code == 200  # pools open in a worker
        workers = server.worker_pids()
        metrics = metrics_folder(workers[0])
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        conn = await Connection.open(server.url)
        await conn.send(
            head("POST", "/auth/login", "Content-Type: application/json",
                 f"Content-Length: {len(body)}") + body[:10]
        )  # fmt: skip
        await asyncio.sleep(0.3)
        send_sigterm(server)  # type: ignore[operator]
        # The idle worker leaves first; the one holding the login must still find
        # everything it writes to, its metrics folder included.
        await asyncio.to_thread(_one_worker_exited, server, workers)
        metrics_kept = await asyncio.to_thread(os.path.isdir, metrics)
        assert await conn.send(body[10:])
        response = await conn.response()
        await conn.close()
        exit_code = await asyncio.to_thread(server.process.wait, 15)
    finally:
        output = server.stop()
    open_after = await _connections_named(name, pg, redis_url)
    print(f"\nlogin in flight at SIGTERM: {response.status}; exit code {exit_code}; "
          f"metrics folder kept after the first worker exited: {metrics_kept}; "
          f"connections left (postgres, redis): {open_after}")  # fmt: skip
    assert metrics_kept
    assert response.status == 200, (response.body, output)
    assert "access_token" in json.loads(response.body)
    assert exit_code == 0, output
    assert open_after == (0, 0)
    assert not [line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)]


async def test_readyz_answers_503_once_draining_begins(e2e_settings: Settings) -> None:
    server = Server(settings_env(e2e_settings), workers=2)
    try:
        workers = server.worker_pids()
        conn = await Connection.open(server.url)
        # A readiness probe whose body is still on its way when the signal comes.
        await conn.send(head("GET", "/readyz", "Content-Length: 2"))
        await asyncio.sleep(0.3)
        _signal_master(server)
        await asyncio.to_thread(_one_worker_exited, server, workers)
        assert await conn.send(b"{}")
        response = await conn.response()
        await conn.close()
        exit_code = await asyncio.to_thread(server.process.wait, 15)
    finally:
        server.stop()
    problem = json.loads(response.body)
    print(f"\n/readyz while draining: {response.status} {problem.get('detail')}")
    assert response.status == 503
    assert problem["code"] == "service_unavailable"
    assert problem["checks"] == {"worker": "draining"}
    assert response.headers["retry-after"] == "5"
    assert exit_code == 0


@pytest.mark.parametrize("send_sigterm", [_signal_master, _signal_every_process])
async def test_with_a_drain_delay_workers_keep_accepting_and_say_draining_until_it_ends(
    send_sigterm: object, e2e_settings: Settings
) -> None:
    """DRAIN_DELAY: after SIGTERM, new connections are still accepted (none refused or
    reset) and /readyz answers 503 on them, so a balancer takes the host out before its
    sockets close; then the master exits 0."""
    delay = 3.0
    server = Server(settings_env(replace(e2e_settings, drain_delay=delay)), workers=2)
    answers: list[int] = []
    try:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            assert (await http.get("/readyz")).status_code == 200
            send_sigterm(server)  # type: ignore[operator]
            signalled = time.monotonic()
            # Within the delay, with a margin for a loaded machine: a new connection each.
            while time.monotonic() - signalled < delay / 3:
                answers.append((await http.get("/readyz")).status_code)
                answers.append((await http.get("/healthz")).status_code)
        exit_code = await asyncio.to_thread(server.process.wait, delay + WORKER_EXIT)
    finally:
        output = server.stop()
    print(f"\nnew connections in the first {delay / 3:g} s of a {delay:g} s drain delay: "
          f"{len(answers)} answered {sorted(set(answers))}; exit code {exit_code}")  # fmt: skip
    readyz, healthz = answers[0::2], answers[1::2]
    assert readyz and set(readyz[1:]) == {503}, answers  # the first may precede the event
    assert set(healthz) == {200}, answers
    assert exit_code == 0, output
    assert not [line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)]
