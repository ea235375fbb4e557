"""Two independent hosts (separate Hypercorn masters, 2 workers each) on one Postgres and
one Redis: a session moves freely between them, and whatever one revokes or counts, the
other refuses or counts too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import Server, settings_env

pytestmark = pytest.mark.e2e

FAILURE_LIMIT = 5
ATTEMPTS = 30


@pytest.fixture(scope="module")
def hosts(e2e_settings: Settings) -> Iterator[tuple[Server, Server]]:
    settings = replace(
        e2e_settings,
        rate_limits_enabled=True,
        login_rate_limit="1000/minute",
        login_failure_limit=f"{FAILURE_LIMIT}/15 minutes",
    )
    first = Server(settings_env(settings), workers=2)
    try:
        second = Server(settings_env(settings), workers=2)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
async def clients(hosts: tuple[Server, Server]) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with (
        httpx.AsyncClient(base_url=hosts[0].url, timeout=30) as a,
        httpx.AsyncClient(base_url=hosts[1].url, timeout=30) as b,
    ):
        yield a, b


@pytest.fixture
async def limit_keys(redis_url: str) -> AsyncIterator[None]:
    """Removes the rate-limit counters the hosts left in Redis."""
    yield
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match="rl:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_logout_all_on_one_host_is_refused_by_the_other_at_the_next_request(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], users: Users, limit_keys: None
) -> None:
    a, b = clients
    email = await users.register(a)
    phone = await users.login(a, email)
    refreshed = await b.post("/auth/refresh", headers=_bearer(phone["refresh_token"]))
    assert refreshed.status_code == 200, refreshed.text
    tablet = await users.login(b, email)
    rotated = refreshed.json()
    accesses = [phone["access_token"], rotated["access_token"], tablet["access_token"]]
    for access in accesses:  # each worker of each host has seen (and may cache) each token
        for client in (a, b, a, b):
            assert (await client.get("/auth/verify", headers=_bearer(access))).status_code == 204

    assert (await a.post("/auth/logout-all", headers=_bearer(accesses[1]))).status_code == 204

    refused = []
    for access in accesses:
        for path in ("/auth/verify", "/me", "/auth/verify", "/me"):
            refused.append((await b.get(path, headers=_bearer(access))).status_code)
    for refresh in (rotated["refresh_token"], tablet["refresh_token"]):
        refused.append((await b.post("/auth/refresh", headers=_bearer(refresh))).status_code)
    print(f"\nrequests to the second host after logout-all on the first: "
          f"{refused.count(401)} of {len(refused)} refused with 401")  # fmt: skip
    assert refused == [401] * len(refused)


async def test_the_account_failure_limit_holds_across_both_hosts(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], users: Users, limit_keys: None
) -> None:
    a, b = clients
    email = await users.register(a)
    responses = await asyncio.gather(
        *(
            (a, b)[n % 2].post(
                "/auth/login", json={"email": email, "password": f"wrong {n:02}!!!!"}
            )
            for n in range(ATTEMPTS)
        )
    )
    statuses = [r.status_code for r in responses]
    print(f"\nwrong passwords over two hosts: 401s {statuses.count(401)} of {ATTEMPTS}, "
          f"429s {statuses.count(429)}")  # fmt: skip
    assert statuses.count(401) + statuses.count(429) == ATTEMPTS
    assert statuses.count(401) <= FAILURE_LIMIT
    right = await b.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert right.status_code == 429
