"""Fair hashing admission on the real server: a flood of wrong-password logins from many
addresses saturates the hashing, while one user on its own address keeps logging in."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from dataclasses import replace

import httpx

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import Server, settings_env

FLOOD_CONNECTIONS = 128
ROUNDS = 25
ANSWER_WITHIN = 2.0  # seconds: the target on a quiet host (printed)
OWNER_ADDRESS = "198.51.100.7"


def _random_address() -> str:
    octets = (random.randint(1, 223), random.randint(0, 255), random.randint(0, 255))
    return ".".join(map(str, (*octets, random.randint(1, 254))))


async def test_a_quiet_address_logs_in_while_many_addresses_flood_the_hashing(
    e2e_settings: Settings, users: Users
) -> None:
    # The real argon2id cost, addresses from X-Forwarded-For, and no rate limits: the flood
    # must be met by the hashing's admission, not refused by a limit first.
    flooded = replace(
        e2e_settings,
        argon2_memory_kib=19456,
        argon2_time_cost=2,
        trusted_proxy_hops=1,
        rate_limits_enabled=False,
    )
    server = Server(settings_env(flooded), workers=2)
    flood_statuses: dict[int, int] = {}
    stop = asyncio.Event()
    try:
        owner_headers = {"X-Forwarded-For": OWNER_ADDRESS}
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as owner:
            email = await users.register(owner)
            credentials = {"email": email, "password": PASSWORD}
            # The owner has logged in from its address before the flood begins.
            first = await owner.post("/auth/login", json=credentials, headers=owner_headers)
            assert first.status_code == 200, first.text

            limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS)
            async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as flood:

                async def guess() -> None:
                    while not stop.is_set():
                        response = await flood.post(
                            "/auth/login",
                            json={
                                "email": f"flood-{uuid.uuid4().hex}@example.com",
                                "password": "wrong passphrase 0000",
                            },
                            headers={"X-Forwarded-For": _random_address()},
                        )
                        status = response.status_code
                        flood_statuses[status] = flood_statuses.get(status, 0) + 1

                flooders = [asyncio.create_task(guess()) for _ in range(FLOOD_CONNECTIONS)]
                try:
                    await asyncio.sleep(3)  # the hashing is saturated before the owner logs in
                    flood_started = time.monotonic()
                    flood_before = dict(flood_statuses)
                    latencies: list[float] = []
                    outcomes: list[int] = []
                    for _ in range(ROUNDS):
                        started = time.monotonic()
                        response = await owner.post(
                            "/auth/login", json=credentials, headers=owner_headers
                        )
                        latencies.append(time.monotonic() - started)
                        outcomes.append(response.status_code)
                        await asyncio.sleep(max(0.0, 1.0 - latencies[-1]))
                    elapsed = time.monotonic() - flood_started
                    during = {s: n - flood_before.get(s, 0) for s, n in flood_statuses.items()}
                finally:
                    stop.set()
                    await asyncio.gather(*flooders, return_exceptions=True)
        answered = [
            latency
            for latency, status in zip(latencies, outcomes, strict=True)
            if status == 200 and latency <= ANSWER_WITHIN
        ]
        successes = [lat for lat, s in zip(latencies, outcomes, strict=True) if s == 200]
        quantiles = statistics.quantiles(successes, n=100) if len(successes) > 1 else [0.0] * 99
        print(
            f"owner: {outcomes.count(200)} of {ROUNDS} logins 200, {len(answered)} within "
            f"{ANSWER_WITHIN:g} s (statuses {sorted(set(outcomes))}); successes p50 "
            f"{statistics.median(successes or [0.0]):.2f} s, p99 {quantiles[98]:.2f} s; flood "
            f"over {elapsed:.0f} s: {during.get(401, 0) / elapsed:.1f} checked (401)/s, "
            f"{during.get(503, 0) / elapsed:.1f} shed (503)/s, statuses {during}"
        )
        assert set(flood_statuses) <= {401, 503}
        assert flood_statuses.get(401, 0) > 0
        # Served ahead of the flood, never shed. How fast is the host's to say (a loaded
        # machine hashes many times slower), so the 2 s target is printed, not asserted.
        assert outcomes.count(200) >= 0.95 * ROUNDS
    finally:
        stop.set()
        server.stop()
