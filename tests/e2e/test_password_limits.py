"""Password checks under concurrency, against the real 2-worker server: the account's limit
holds however many attempts arrive together, and a hashing flood is refused, not queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.conftest import forget_redis_keys
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import Server, settings_env


@pytest.fixture
async def limit_keys(redis_url: str, settings: Settings) -> AsyncIterator[None]:
    """Removes the rate-limit counters the test's server left in Redis."""
    yield
    redis = Redis.from_url(redis_url)
    try:
        await forget_redis_keys(redis, settings.redis_key_prefix + "rl:")
    finally:
        await redis.aclose()


async def test_thirty_simultaneous_wrong_logins_check_at_most_five_passwords(
    e2e_settings: Settings, users: Users, limit_keys: None
) -> None:
    limited = replace(
        e2e_settings,
        rate_limits_enabled=True,
        login_rate_limit="1000/minute",
        login_failure_limit="5/15 minutes",
    )
    server = Server(settings_env(limited), workers=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            email = await users.register(http)
            responses = await asyncio.gather(
                *(
                    http.post("/auth/login", json={"email": email, "password": f"wrong {n:02}!!!!"})
                    for n in range(30)
                )
            )
            statuses = [r.status_code for r in responses]
            print(f"401s: {statuses.count(401)} of 30, 429s: {statuses.count(429)}")
            assert statuses.count(401) + statuses.count(429) == 30
            assert statuses.count(401) <= 5
            assert all("Retry-After" in r.headers for r in responses if r.status_code == 429)
    finally:
        server.stop()


async def test_hashing_flood_is_refused_with_503_and_a_login_still_gets_through(
    e2e_settings: Settings, users: Users
) -> None:
    # One hashing thread and two waiting places per worker, at the real argon2id cost.
    small_queue = replace(
        e2e_settings,
        argon2_memory_kib=19456,
        argon2_time_cost=2,
        hash_workers=1,
        hash_queue_max=2,
    )
    server = Server(settings_env(small_queue), workers=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            attacker = await users.register(http)
            token = (await users.login(http, attacker))["access_token"]
            victim = await users.register(http)

            async def guess(n: int) -> httpx.Response:
                return await http.post(
                    "/me/password",
                    json={"current_password": f"guess {n:03}!!!!!!", "new_password": PASSWORD},
                    headers={"Authorization": f"Bearer {token}"},
                )

            async def login() -> tuple[int, list[float]]:
                latencies: list[float] = []
                for _ in range(20):
                    started = time.monotonic()
                    response = await http.post(
                        "/auth/login", json={"email": victim, "password": PASSWORD}
                    )
                    latencies.append(time.monotonic() - started)
                    if response.status_code != 503:
                        return response.status_code, latencies
                    await asyncio.sleep(int(response.headers["Retry-After"]))
                return 503, latencies

            *flood, (login_status, latencies) = await asyncio.gather(
                *(guess(n) for n in range(48)), login()
            )
        statuses = [r.status_code for r in flood]
        refused = [r for r in flood if r.status_code == 503]
        print(
            f"flood: 503s {len(refused)} of 48, 401s {statuses.count(401)}; "
            f"victim login {login_status} after {len(latencies)} tries, "
            f"latencies {[round(s * 1000) for s in latencies]} ms"
        )
        assert len(refused) > 0
        assert set(statuses) <= {401, 503}
        for response in refused:
            assert response.json()["code"] == "service_unavailable"
            assert int(response.headers["Retry-After"]) > 0
        assert login_status == 200
    finally:
        server.stop()
