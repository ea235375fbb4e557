"""REVOCATION_CACHE against real Redis: two in-process workers (harnesses) on one Redis,
each with its cache and its subscription. A revocation made through one is refused by
the other once the invalidation arrives; a fill that raced an invalidation is never kept;
a lost or silent channel turns the cache off until it is back; off, nothing subscribes.

Waits for delivery are liveness waits with a generous deadline, never timing assertions.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from api.domain.errors import TokenRevoked
from api.security.verifier import TokenVerifier
from db.redis_pool import create_subscriber
from db.revocation_cache import RevocationCache
from db.revocation_channel import InvalidationListener
from db.revocation_store import Revocation, RevocationStore
from tests.e2e.server import free_port
from tests.integration.admin_helpers import admin_token
from tests.integration.conftest import Harness, HarnessFactory, bearer
from tests.redis_server import OwnRedis

DEADLINE = 30.0
PASSWORD = "a long enough passphrase"


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll `condition` until it holds (a liveness wait: fails only after DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def listener_of(harness: Harness) -> InvalidationListener:
    listener = harness.resources.invalidations
    assert listener is not None
    return listener


async def cached_worker(make_harness: HarnessFactory, name: str) -> Harness:
    harness = await make_harness(revocation_cache=True, db_application_name=name)
    await asyncio.wait_for(listener_of(harness).confirmed.wait(), DEADLINE)
    return harness


@pytest.fixture
def name() -> str:
    """The workers' client name: their subscriptions can be told apart in CLIENT LIST."""
    return f"revcache-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def workers(make_harness: HarnessFactory, name: str) -> tuple[Harness, Harness]:
    return await cached_worker(make_harness, name), await cached_worker(make_harness, name)


async def _verify(harness: Harness, token: str) -> int:
    return (await harness.client.get("/auth/verify", headers=bearer(token))).status_code


async def _subscribers(redis: Redis, name: str) -> list[str]:
    clients = await redis.client_list(_type="pubsub")
    return [str(c["id"]) for c in clients if c["name"] == f"{name}-revocations"]


async def _kill_subscribers(redis: Redis, name: str) -> int:
    ids = await _subscribers(redis, name)
    for client_id in ids:
        await redis.client_kill_filter(_id=client_id)
    return len(ids)


async def _logout(a: Harness, tokens: dict[str, str], email: str) -> None:
    answer = await a.client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    assert answer.status_code == 204


async def _logout_all(a: Harness, tokens: dict[str, str], email: str) -> None:
    other = await a.login(email)
    answer = await a.client.post("/auth/logout-all", headers=bearer(other["access_token"]))
    assert answer.status_code == 204


async def _password_change(a: Harness, tokens: dict[str, str], email: str) -> None:
    other = await a.login(email)
    answer = await a.client.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=bearer(other["access_token"]),
    )
    assert answer.status_code == 204


async def _admin_disable(a: Harness, tokens: dict[str, str], email: str) -> None:
    _, admin = await admin_token(a, f"admin-{uuid.uuid4().hex[:8]}@example.com")
    user_id = (await a.client.get("/me", headers=bearer(tokens["access_token"]))).json()["id"]
    answer = await a.client.patch(
        f"/admin/users/{user_id}", json={"disabled": True}, headers=bearer(admin)
    )
    assert answer.status_code == 200, answer.text


async def _session_deleted(a: Harness, tokens: dict[str, str], email: str) -> None:
    other = await a.login(email)
    answer = await a.client.delete(
        f"/auth/sessions/{tokens['session_id']}", headers=bearer(other["access_token"])
    )
    assert answer.status_code == 204


@pytest.mark.parametrize(
    "revoke", [_logout, _logout_all, _password_change, _admin_disable, _session_deleted]
)
async def test_a_revocation_through_one_worker_is_refused_by_the_other_once_heard(
    workers: tuple[Harness, Harness], revoke: Callable[..., Awaitable[None]]
) -> None:
    a, b = workers
    email = f"cached-{uuid.uuid4().hex[:8]}@example.com"
    await a.register(email)
    tokens = await a.login(email)
    assert await _verify(b, tokens["access_token"]) == 204
    cache = listener_of(b).cache
    assert len(cache) == 1, "the answer B read is kept"
    assert await _verify(b, tokens["access_token"]) == 204

    await revoke(a, tokens, email)
    await until(
        lambda: len(cache) == 0, "B never heard the invalidation"
    )  # B forgot the user's answer: the next request asks Redis
    assert await _verify(b, tokens["access_token"]) == 401
    assert await _verify(a, tokens["access_token"]) == 401


class HeldStore(RevocationStore):
    """Reads Redis for real, then holds the answer until the test releases it: the request
    is "in flight" with a pre-revocation answer for as long as the test wants."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__(redis, prefix)
        self.read = asyncio.Event()
        self.release = asyncio.Event()
        self.asked = 0

    async def revocation(
        self, user_id: str, session_id: str, jti: str, issued_at: float
    ) -> Revocation:
        self.asked += 1
        verdict = await super().revocation(user_id, session_id, jti, issued_at)
        self.read.set()
        await self.release.wait()
        return verdict


@asynccontextmanager
async def held_worker(harness: Harness) -> AsyncIterator[tuple[TokenVerifier, HeldStore]]:
    """A verifier on a HeldStore, with a cache kept by a subscription of its own."""
    settings = harness.resources.settings
    store = HeldStore(harness.resources.redis, settings.redis_key_prefix)
    cache = RevocationCache(max_age=60, size=100)
    listener = InvalidationListener(
        cache,
        store.invalidation_channel,
        lambda attempt: create_subscriber(
            harness.resources.redis, settings.redis_url, timeout=2, client_name="held"
        ),
        answer_within=2,
    )
    listener.start()
    try:
        await asyncio.wait_for(listener.confirmed.wait(), DEADLINE)
        yield (
            TokenVerifier(settings, store, keys=harness.resources.keys, revocation_cache=cache),
            store,
        )
    finally:
        await listener.stop()


@pytest.mark.parametrize("revoked_meanwhile", [True, False])
async def test_an_answer_read_before_an_invalidation_is_never_kept(
    harness: Harness, revoked_meanwhile: bool
) -> None:
    await harness.register("racer@example.com")
    tokens = await harness.login("racer@example.com")
    async with held_worker(harness) as (verifier, store):
        cache = verifier._revocation_cache
        assert cache is not None
        in_flight = asyncio.create_task(verifier.authenticate(tokens["access_token"]))
        await store.read.wait()  # Redis has answered "not revoked"; the answer is held
        before = cache.ticket()
        if revoked_meanwhile:
            await _logout(harness, tokens, "racer@example.com")
            await until(lambda: cache.ticket() != before, "the invalidation was never heard")
        store.release.set()
        await in_flight  # it asked before the revocation answered: it may pass
        if revoked_meanwhile:
            assert len(cache) == 0, "the stale answer was kept"
            with pytest.raises(TokenRevoked):
                await verifier.authenticate(tokens["access_token"])
            assert store.asked == 2
        else:
            assert len(cache) == 1
            await verifier.authenticate(tokens["access_token"])
            assert store.asked == 1, "a kept answer is served without asking Redis"


async def test_a_killed_subscription_turns_the_cache_off_and_a_revocation_meanwhile_is_refused(
    workers: tuple[Harness, Harness], name: str
) -> None:
    a, b = workers
    await a.register("killed@example.com")
    tokens = await a.login("killed@example.com")
    assert await _verify(b, tokens["access_token"]) == 204
    listener, cache = listener_of(b), listener_of(b).cache
    assert len(cache) == 1

    redis = a.resources.redis
    listener_connect = listener._connect
    # Until the test says, B's new subscriptions go to a port where nothing listens.
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    listener._connect = lambda attempt: create_subscriber(
        b.resources.redis, nowhere, timeout=2, client_name="nowhere"
    )
    try:
        assert await _kill_subscribers(redis, name) == 2
        await until(lambda: not cache.serving, "B never noticed its channel was killed")
        assert len(cache) == 0, "flushed on the loss"

        await _logout(a, tokens, "killed@example.com")
        assert await _verify(b, tokens["access_token"]) == 401, "refused at once, channel down"
        assert len(cache) == 0 and not cache.serving
    finally:
        listener._connect = listener_connect
    await until(lambda: cache.serving, "B never subscribed again")
    assert await _verify(b, tokens["access_token"]) == 401
    assert listener.confirmed.is_set()


async def test_a_silent_channel_turns_the_cache_off_until_it_answers_again(
    own_redis: OwnRedis, settings: Settings
) -> None:
    """Redis stopped (SIGSTOP) leaves the TCP connection open and quiet: only the PING
    tells; no PONG within the bound turns the cache off."""
    redis = Redis.from_url(own_redis.url)
    cache = RevocationCache(max_age=60, size=100)
    listener = InvalidationListener(
        cache,
        RevocationStore(redis).invalidation_channel,
        lambda attempt: create_subscriber(redis, own_redis.url, timeout=0.5, client_name="quiet"),
        answer_within=0.5,
        ping_every=0.1,
    )
    listener.start()
    try:
        await asyncio.wait_for(listener.confirmed.wait(), DEADLINE)
        ticket = cache.ticket()
        cache.put(ticket, ("u", "s", "j"), Revocation.NONE, time.time() + 600)
        own_redis.pause()
        try:
            await until(lambda: not cache.serving, "a silent channel was never noticed")
            assert len(cache) == 0
        finally:
            own_redis.resume()
        await until(lambda: cache.serving, "the cache never came back with Redis")
    finally:
        await listener.stop()
        await redis.aclose()
    assert not cache.serving, "stopped: off"


async def test_with_the_setting_off_nothing_subscribes_and_every_request_asks_redis(
    make_harness: HarnessFactory, name: str
) -> None:
    harness = await make_harness(db_application_name=name)
    assert harness.resources.settings.revocation_cache is False
    assert harness.resources.invalidations is None
    assert harness.resources.verifier._revocation_cache is None
    await harness.register("plain@example.com")
    tokens = await harness.login("plain@example.com")
    assert await _verify(harness, tokens["access_token"]) == 204
    assert await _subscribers(harness.resources.redis, name) == []


def test_the_setting_is_off_unless_asked() -> None:
    defaults = Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})
    assert defaults.revocation_cache is False
    assert (defaults.revocation_cache_max_age, defaults.revocation_cache_size) == (60, 100_000)
