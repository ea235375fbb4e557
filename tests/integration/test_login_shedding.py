"""A login the hashing would refuse is answered 503 in front of Flask: no per-IP
reservation in Redis, no body validation, the same problem, counted as a login, and
held for HASH_WAIT_BUDGET before it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from api.security.hashing_admission import HashingAdmission
from tests.integration.conftest import Harness, HarnessFactory

CLIENT = "127.0.0.1"  # httpx's ASGI transport's client address
OTHER = "192.0.2.7"
HOLD = 0.2  # HASH_WAIT_BUDGET: how long a shed login's answer is held


class RedisCommands:
    """Every command Redis runs on the harness's database while the block runs (MONITOR)."""

    def __init__(self, harness: Harness) -> None:
        self._url = harness.runtime.settings.redis_url
        self._db = Redis.from_url(self._url).get_connection_kwargs().get("db", 0)
        self.seen: list[str] = []

    async def __aenter__(self) -> RedisCommands:
        self._redis = Redis.from_url(self._url)
        listening = asyncio.Event()
        self._task = asyncio.create_task(self._listen(listening))
        await asyncio.wait_for(listening.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.sleep(0.1)  # what the block sent has reached the monitor
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._redis.aclose()

    async def _listen(self, listening: asyncio.Event) -> None:
        async with self._redis.monitor() as monitor:
            listening.set()
            async for entry in monitor.listen():
                if int(entry["db"]) == self._db:
                    self.seen.append(entry["command"])


def _shed_logins() -> float:
    value = REGISTRY.get_sample_value("auth_api_logins_total", {"outcome": "service_unavailable"})
    return value or 0.0


async def _saturate(admission: HashingAdmission) -> asyncio.Task[None]:
    """Hold the one hashing thread for another address and queue a check of the test's
    own address behind it: the queue (of one) is full and nothing would give way."""
    await admission.turn(OTHER)
    waiting = asyncio.create_task(admission.turn(CLIENT))
    await asyncio.sleep(0)
    return waiting


async def test_a_login_the_hashing_would_refuse_is_answered_before_flask_and_redis(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(
        rate_limits_enabled=True, hash_workers=1, hash_queue_max=1, hash_wait_budget=HOLD
    )
    await harness.register("shed@example.com")
    admission = harness.resources.passwords.admission
    waiting = await _saturate(admission)
    try:
        shed_before = _shed_logins()
        body = {"email": "shed@example.com", "password": "a long enough passphrase"}
        async with RedisCommands(harness) as redis:
            answers, held = [], []
            # The last is not even valid: a body Flask would refuse with 422 is shed alike.
            for login in [body] * 5 + [{"email": 3}]:
                sent = time.monotonic()
                answers.append(await harness.client.post("/auth/login", json=login))
                held.append(time.monotonic() - sent)
        shed = _shed_logins() - shed_before
    finally:
        admission.finished(None)  # the held thread: the queued check takes it
        await waiting
        admission.finished(None)
    statuses = [a.status_code for a in answers]
    print(f"\nlogins while the hashing is full: {statuses}; Redis commands they sent: "
          f"{len(redis.seen)}; counted as shed logins: {shed:g}; held at least "
          f"{min(held):.3f} s (HASH_WAIT_BUDGET {HOLD} s)")  # fmt: skip
    assert statuses == [503] * 6
    for answer in answers:
        assert answer.headers["retry-after"] == "2"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "service_unavailable"
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert redis.seen == []
    # Held as long as an admitted check may wait: a client retrying at once asks at most
    # once per budget (a lower bound of a sleep, not a speed).
    assert min(held) >= HOLD
    assert shed == 6
    # Once the hashing has room, the same login goes through Flask and its limits.
    async with RedisCommands(harness) as redis:
        assert (await harness.client.post("/auth/login", json=body)).status_code == 200
    assert redis.seen


async def test_a_login_that_would_displace_a_waiting_check_is_not_shed_by_the_lane(
    make_harness: HarnessFactory,
) -> None:
    """The lane refuses only what the admission would: a proven address ranks before an
    unproven one's queued check, so its login goes on to the view and is served."""
    harness = await make_harness(hash_workers=1, hash_queue_max=1)
    await harness.register("owner@example.com")
    admission = harness.resources.passwords.admission
    admission.proven.add(CLIENT)
    await admission.turn(OTHER)
    stranger = asyncio.create_task(admission.turn("198.51.100.9"))
    await asyncio.sleep(0)
    login = asyncio.create_task(
        harness.client.post(
            "/auth/login",
            json={"email": "owner@example.com", "password": "a long enough passphrase"},
        )
    )
    try:
        # The owner's check, queued, displaces the stranger's; then the held thread frees.
        await asyncio.wait_for(asyncio.wait([stranger]), 30)
        admission.finished(None)
        answer = await login
        refused = await asyncio.gather(stranger, return_exceptions=True)
    finally:
        if not stranger.done():
            stranger.cancel()
    print(f"\nowner's login with the queue full: {answer.status_code}; "
          f"the stranger's queued check: {type(refused[0]).__name__}")  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert type(refused[0]).__name__ == "HashingBusy"
