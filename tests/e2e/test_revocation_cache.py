"""REVOCATION_CACHE over real servers: host A (the session's server, cache off) revokes,
host B (2 workers, cache on, same Postgres and Redis) refuses once the invalidation is
delivered; with B's subscriptions killed (CLIENT KILL), a revocation made meanwhile is
refused at once by every worker of B. With the setting off nothing subscribes.

Delivery is waited for with a generous deadline (liveness), never timed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import SHUTDOWN_PROBLEMS, Server, settings_env

pytestmark = pytest.mark.e2e

DEADLINE = 30.0
# Enough requests that each of B's two workers serves some (the kernel spreads them).
SPREAD = 20


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _subscriber_name(settings: Settings) -> str:
    return f"{settings.db_application_name}-revocations"


@pytest.fixture(scope="module")
def cached_settings(e2e_settings: Settings) -> Settings:
    return replace(
        e2e_settings,
        revocation_cache=True,
        db_application_name=f"{e2e_settings.db_application_name}-cached",
    )


@pytest.fixture(scope="module")
def host_b(cached_settings: Settings) -> Iterator[Server]:
    """Host B; its stop (SIGTERM, subscriber tasks running) must be clean and exit 0."""
    server = Server(settings_env(cached_settings), workers=2)
    yield server
    output = server.stop()
    problems = [line for line in output.splitlines() if any(p in line for p in SHUTDOWN_PROBLEMS)]
    assert not problems, output
    assert server.process.returncode == 0, output


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def _subscribers(redis: Redis, name: str) -> list[str]:
    return [str(c["id"]) for c in await redis.client_list(_type="pubsub") if c["name"] == name]


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.fixture
async def b(
    host_b: Server, redis: Redis, cached_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of host B, once both its workers are subscribed."""
    name = _subscriber_name(cached_settings)

    async def both_subscribed() -> bool:
        return len(await _subscribers(redis, name)) == 2

    await _until(both_subscribed, "host B's workers never both subscribed")
    async with httpx.AsyncClient(base_url=host_b.url, timeout=30) as client:
        yield client


async def _codes(client: httpx.AsyncClient, token: str) -> list[int]:
    answers = [await client.get("/auth/verify", headers=_bearer(token)) for _ in range(SPREAD)]
    return [answer.status_code for answer in answers]


async def _logout(http: httpx.AsyncClient, users: Users, email: str, token: str) -> None:
    answer = await http.post("/auth/logout", headers=_bearer(token))
    assert answer.status_code == 204


async def _logout_all(http: httpx.AsyncClient, users: Users, email: str, token: str) -> None:
    other = await users.login(http, email)
    answer = await http.post("/auth/logout-all", headers=_bearer(other["access_token"]))
    assert answer.status_code == 204


async def _password_change(http: httpx.AsyncClient, users: Users, email: str, token: str) -> None:
    other = await users.login(http, email)
    answer = await http.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=_bearer(other["access_token"]),
    )
    assert answer.status_code == 204


def _admin_disable(pg: asyncpg.Connection) -> Callable[..., Awaitable[None]]:
    async def disable(http: httpx.AsyncClient, users: Users, email: str, token: str) -> None:
        admin_email = await users.register(http)
        await pg.execute("UPDATE users SET role = 'admin' WHERE email = $1", admin_email)
        admin = await users.login(http, admin_email)
        me = await http.get("/me", headers=_bearer(token))
        answer = await http.patch(
            f"/admin/users/{me.json()['id']}",
            json={"disabled": True},
            headers=_bearer(admin["access_token"]),
        )
        assert answer.status_code == 200, answer.text

    return disable


@pytest.mark.parametrize("how", ["logout", "logout-all", "password change", "admin disable"])
async def test_a_revocation_on_host_a_is_refused_by_host_b_once_delivered(
    how: str,
    http: httpx.AsyncClient,
    b: httpx.AsyncClient,
    users: Users,
    pg: asyncpg.Connection,
) -> None:
    revoke = {
        "logout": _logout,
        "logout-all": _logout_all,
        "password change": _password_change,
        "admin disable": _admin_disable(pg),
    }[how]
    email = await users.register(http)
    tokens = await users.login(http, email)
    assert set(await _codes(b, tokens["access_token"])) == {204}  # now remembered by B

    await revoke(http, users, email, tokens["access_token"])

    async def refused() -> bool:
        answer = await b.get("/auth/verify", headers=_bearer(tokens["access_token"]))
        return answer.status_code == 401

    await _until(refused, f"host B never refused the token after {how}")
    assert set(await _codes(b, tokens["access_token"])) == {401}


async def test_with_host_b_channel_killed_a_revocation_meanwhile_is_refused_at_once(
    http: httpx.AsyncClient,
    b: httpx.AsyncClient,
    users: Users,
    redis: Redis,
    cached_settings: Settings,
) -> None:
    email = await users.register(http)
    tokens = await users.login(http, email)
    token = tokens["access_token"]
    assert set(await _codes(b, token)) == {204}

    name = _subscriber_name(cached_settings)
    killed = await _subscribers(redis, name)
    assert len(killed) == 2
    for client_id in killed:
        await redis.client_kill_filter(_id=client_id, _type="pubsub")
    await _logout(http, users, email, token)
    assert set(await _codes(b, token)) == {401}, "a worker served a remembered answer"

    async def subscribed_again() -> bool:
        now = await _subscribers(redis, name)
        return len(now) == 2 and not set(now) & set(killed)

    await _until(subscribed_again, "host B's workers never subscribed again")
    assert set(await _codes(b, token)) == {401}


async def test_with_the_setting_off_no_worker_subscribes(
    http: httpx.AsyncClient, redis: Redis, e2e_settings: Settings
) -> None:
    assert (await http.get("/healthz")).status_code == 200
    assert e2e_settings.revocation_cache is False
    assert await _subscribers(redis, _subscriber_name(e2e_settings)) == []
