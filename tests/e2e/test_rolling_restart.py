"""A rolling restart of two hosts under load: each in turn gets SIGTERM, drains, exits 0
and is started again, while a balancer in the test sends the mobile flow to whichever
hosts /readyz says are ready. No request that reached a healthy host fails.

The hosts keep accepting for DRAIN_DELAY after their SIGTERM (a few of the balancer's
probe intervals): each worker listens on a socket of its own, and a connection queued
on one when it closes is reset, which a request picked just before the signal would
otherwise meet."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from api.config.settings import Settings
from tests.e2e.balancer import PROBE_INTERVAL, Balancer
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import SHUTDOWN_PROBLEMS, Server, settings_env

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

CLIENTS = 4
USERS = 6
STEADY = 1.5  # seconds of load before, between and after the restarts
EXIT = 20.0  # a bound on a host's drain and exit, only reached on a hang
DRAIN_DELAY = 5 * PROBE_INTERVAL


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Pool:
    """The servers started by the test, stopped at the end whatever happened."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.servers: list[Server] = []

    async def start(self) -> Server:
        server = await asyncio.to_thread(Server, self.env, 2)
        self.servers.append(server)
        return server

    def stop_one(self, server: Server) -> str:
        """Stop `server` (its SIGTERM already sent, or not) and return its output."""
        self.servers.remove(server)
        return server.stop()

    def stop(self) -> None:
        while self.servers:
            self.stop_one(self.servers[0])


@pytest.fixture
async def pool(e2e_settings: Settings) -> AsyncIterator[Pool]:
    pool = Pool(
        settings_env(replace(e2e_settings, rate_limits_enabled=False, drain_delay=DRAIN_DELAY))
    )
    try:
        yield pool
    finally:
        await asyncio.to_thread(pool.stop)


async def _mobile_flow(balancer: Balancer, emails: list[str], stop: asyncio.Event) -> int:
    """login, verify, refresh, verify, logout until `stop`; the number of flows completed."""
    rng = random.Random()
    completed = 0
    while not stop.is_set():
        body = {"email": rng.choice(emails), "password": PASSWORD}
        login = await balancer.request("POST", "/auth/login", 200, json=body)
        if login is None:
            continue
        tokens = login.json()
        first = _bearer(tokens["access_token"])
        if await balancer.request("GET", "/auth/verify", 204, headers=first) is None:
            continue
        refreshed = await balancer.request(
            "POST", "/auth/refresh", 200, headers=_bearer(tokens["refresh_token"])
        )
        if refreshed is None:
            continue
        access = refreshed.json()["access_token"]
        if await balancer.request("GET", "/auth/verify", 204, headers=_bearer(access)) is None:
            continue
        if await balancer.request("POST", "/auth/logout", 204, headers=_bearer(access)) is None:
            continue
        completed += 1
    return completed


async def test_a_rolling_restart_under_load_fails_no_request_that_reached_a_healthy_host(
    pool: Pool, users: Users
) -> None:
    hosts = [await pool.start(), await pool.start()]
    emails = [users.new_email() for _ in range(USERS)]
    async with Balancer([h.url for h in hosts]) as balancer:
        for email in emails:
            body = {"email": email, "password": PASSWORD}
            assert await balancer.request("POST", "/auth/register", 201, json=body)
        stop = asyncio.Event()
        load = [asyncio.create_task(_mobile_flow(balancer, emails, stop)) for _ in range(CLIENTS)]
        exits = []
        outputs = []
        try:
            await asyncio.sleep(STEADY)
            for old in list(hosts):
                balancer.mark_draining(old.url)
                old.process.terminate()
                exits.append(await asyncio.to_thread(old.process.wait, EXIT))
                balancer.remove(old.url)
                outputs.append(await asyncio.to_thread(pool.stop_one, old))
                new = await pool.start()
                balancer.add(new.url)
                await asyncio.wait_for(balancer.ready(new.url), EXIT)
                await asyncio.sleep(STEADY)
        finally:
            stop.set()
            flows = sum(await asyncio.gather(*load))
    tally = balancer.tally
    print(f"\nrolling restart of 2 hosts under {CLIENTS} clients: {sum(tally.answers.values())} "
          f"answers, {flows} mobile flows completed; "
          f"answers {dict(sorted(tally.answers.items()))}; "
          f"requests by host generation {list(tally.by_host.values())}; "
          f"failed at a healthy host: {len(tally.failed_at_healthy)}; "
          f"sent to a host after its SIGTERM, before the balancer's probe saw it: "
          f"{tally.sent_to_draining} (connection refused and retried elsewhere: "
          f"{tally.refused_and_retried}, failed: {len(tally.failed_at_draining)} "
          f"{sorted(set(tally.failed_at_draining))}); "
          f"exit codes {exits}")  # fmt: skip
    assert tally.failed_at_healthy == []
    assert exits == [0, 0]
    assert flows > 0
    assert len(tally.by_host) == 4  # both old and both new hosts served requests
    for output in outputs:
        problems = [
            line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)
        ]
        assert not problems, output
