"""Client addresses: parsed as IPs, IPv6 counted per network, nothing too long for a column.

Behind one trusted proxy (TRUSTED_PROXY_HOPS=1) the last X-Forwarded-For entry names
the client. A 60-character entry used to reach the sessions table's varchar(45) and
turn a correct login into a 500; any string was a fresh rate-limit bucket, and so was
every single IPv6 address.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from api.config.settings import Settings
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness
from tests.integration.problems import assert_problem

PASSWORD = "a long enough passphrase"
# The peer address httpx's ASGI transport reports for the socket.
SOCKET_ADDRESS = "127.0.0.1"
CONCURRENT = 12
ROUNDS = 5

Proxied = Callable[..., Awaitable[Harness]]


@asynccontextmanager
async def _proxied(settings: Settings, **changes: Any) -> AsyncIterator[tuple[Harness, str]]:
    """An app behind one trusted proxy, with one registered user; both gone afterwards."""
    # The account's own failure limit stays out of the way of the IP limits tested here.
    changes = {"login_failure_limit": "1000/minute", **changes}
    _, harness = await start_harness(replace(settings, trusted_proxy_hops=1, **changes))
    email = f"client-{uuid.uuid4().hex[:12]}@example.com"
    try:
        async with harness.client:
            await harness.register(email)
            yield harness, email
    finally:
        await stop_harness(harness, email)


def _login(
    harness: Harness, email: str, forwarded_for: str, password: str = PASSWORD, **headers: str
) -> Awaitable[httpx.Response]:
    return harness.client.post(
        "/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": forwarded_for, **headers},
    )


async def _session_ips(harness: Harness, access_token: str) -> list[str | None]:
    response = await harness.client.get("/auth/sessions", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    return [session["ip"] for session in response.json()["sessions"]]


async def test_unparsable_forwarded_entries_fall_back_to_the_socket_address(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = [f"{n:02d}-" + "not-an-address" * 4 + "x" for n in range(CONCURRENT)]
    assert {len(entry) for entry in garbage} == {60}
    async with _proxied(settings) as (harness, email):
        with caplog.at_level(logging.WARNING, logger="api.security.client_address"):
            responses = await asyncio.gather(*(_login(harness, email, g) for g in garbage))
        statuses = Counter(r.status_code for r in responses)
        print(f"logins with a 60-character X-Forwarded-For: {dict(statuses)}")
        assert statuses == {200: CONCURRENT}
        ips = await _session_ips(harness, responses[0].json()["access_token"])
    assert ips == [SOCKET_ADDRESS] * CONCURRENT
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == CONCURRENT


async def test_unparsable_forwarded_entry_is_logged_truncated_and_escaped(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = "forged\r\nINFO admin logged in " + "z" * 2000
    async with _proxied(settings) as (harness, email):
        with caplog.at_level(logging.WARNING, logger="api.security.client_address"):
            response = await _login(harness, email, hostile)
    assert response.status_code == 200
    (message,) = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert "\n" not in message and "\r" not in message
    assert "z" * 100 not in message
    assert len(message) < 200


@pytest.mark.parametrize("path", ["lane", "view"])
async def test_an_underscored_forwarded_for_cannot_choose_the_client(
    settings: Settings, path: str
) -> None:
    # A WSGI server reads x_forwarded_for as X-Forwarded-For and appends it to the proxy's
    # entry: the bridge drops such names, for the lane and for Flask (reached with a cookie).
    cookie = {"Cookie": "unrelated=1"} if path == "view" else {}
    async with _proxied(settings) as (harness, email):
        response = await harness.client.post(
            "/auth/login",
            json={"email": email, "password": PASSWORD},
            headers=httpx.Headers(
                [
                    ("X-Forwarded-For", "203.0.113.9"),
                    ("X_Forwarded_For", "198.51.100.77"),
                    *cookie.items(),
                ]
            ),
        )
        assert response.status_code == 200, response.text
        ips = await _session_ips(harness, response.json()["access_token"])
    assert ips == ["203.0.113.9"]


async def test_unparsable_forwarded_entries_share_the_socket_address_limit(
    settings: Settings,
) -> None:
    async with _proxied(settings, rate_limits_enabled=True, login_rate_limit="3/minute") as (
        harness,
        email,
    ):
        responses = await asyncio.gather(
            *(_login(harness, email, f"garbage-{n}", "wrong password!!") for n in range(CONCURRENT))
        )
        statuses = Counter(r.status_code for r in responses)
        print(f"garbage-forwarded logins from one socket: {dict(statuses)}")
        assert statuses[401] == 3
        assert statuses[429] == CONCURRENT - 3
        # The socket's own bucket is the one that filled up.
        assert_problem(await _login(harness, email, SOCKET_ADDRESS), 429, "rate_limited")


async def test_forwarded_ipv6_address_is_stored_in_full(settings: Settings) -> None:
    async with _proxied(settings) as (harness, email):
        first = await _login(harness, email, "2001:db8:0:1:aaaa:bbbb:cccc:dddd")
        second = await _login(harness, email, "[2001:DB8::42]:8443")
        assert first.status_code == second.status_code == 200
        ips = await _session_ips(harness, first.json()["access_token"])
    assert set(ips) == {"2001:db8:0:1:aaaa:bbbb:cccc:dddd", "2001:db8::42"}


async def test_ipv6_addresses_in_one_64_share_the_ip_login_limit(settings: Settings) -> None:
    same_64: Counter[int] = Counter()
    other_64s: Counter[int] = Counter()
    async with _proxied(settings, rate_limits_enabled=True, login_rate_limit="3/minute") as (
        harness,
        email,
    ):
        for round_ in range(ROUNDS):
            # CONCURRENT addresses of one /64 at once, then one address in each of
            # CONCURRENT other /64s at once.
            one_network = [f"2001:db8:{round_:x}:1:{n:x}::{n + 1:x}" for n in range(CONCURRENT)]
            many_networks = [f"2001:db8:{round_:x}:{n + 2:x}::1" for n in range(CONCURRENT)]
            for addresses, statuses in ((one_network, same_64), (many_networks, other_64s)):
                responses = await asyncio.gather(
                    *(_login(harness, email, ip, "wrong password!!") for ip in addresses)
                )
                statuses.update(r.status_code for r in responses)
    print(f"one /64, {ROUNDS} rounds of {CONCURRENT} at once: {dict(same_64)}")
    print(f"distinct /64s, {ROUNDS} rounds of {CONCURRENT} at once: {dict(other_64s)}")
    assert same_64 == {401: 3 * ROUNDS, 429: (CONCURRENT - 3) * ROUNDS}
    assert other_64s == {401: CONCURRENT * ROUNDS}


async def test_ipv6_rate_limit_prefix_is_configurable(settings: Settings) -> None:
    async with _proxied(
        settings, rate_limits_enabled=True, login_rate_limit="2/minute", ipv6_rate_limit_prefix=48
    ) as (harness, email):
        for subnet in ("2001:db8:cc:1::1", "2001:db8:cc:2::1"):
            assert (await _login(harness, email, subnet, "wrong password!!")).status_code == 401
        same_48 = await _login(harness, email, "2001:db8:cc:3::1", "wrong password!!")
        assert_problem(same_48, 429, "rate_limited")


async def test_ipv4_mapped_ipv6_address_is_the_ipv4_client(settings: Settings) -> None:
    async with _proxied(settings, rate_limits_enabled=True, login_rate_limit="2/minute") as (
        harness,
        email,
    ):
        mapped = await _login(harness, email, "::ffff:192.0.2.7")
        assert mapped.status_code == 200
        assert await _session_ips(harness, mapped.json()["access_token"]) == ["192.0.2.7"]
        # The per-IP limit counts failures: one from each spelling fills it.
        wrong = "wrong password!!"
        assert (await _login(harness, email, "::ffff:192.0.2.7", wrong)).status_code == 401
        assert (await _login(harness, email, "192.0.2.7", wrong)).status_code == 401
        assert_problem(await _login(harness, email, "::ffff:c000:207"), 429, "rate_limited")


async def test_user_agent_with_control_characters_and_no_end_fits_its_column(
    settings: Settings,
) -> None:
    user_agent = "Agent\x00\x01/1.0 " + "u" * 5000
    async with _proxied(settings) as (harness, email):
        response = await _login(harness, email, "192.0.2.8", **{"User-Agent": user_agent})
        assert response.status_code == 200, response.text
        sessions = await harness.client.get(
            "/auth/sessions", headers=bearer(response.json()["access_token"])
        )
    (stored,) = [s["user_agent"] for s in sessions.json()["sessions"]]
    assert stored == ("Agent/1.0 " + "u" * 5000)[:512]


async def test_device_name_longer_than_its_column_is_a_validation_error(
    settings: Settings,
) -> None:
    async with _proxied(settings) as (harness, email):
        response = await harness.client.post(
            "/auth/login", json={"email": email, "password": PASSWORD, "device_name": "d" * 101}
        )
    body = assert_problem(response, 422, "validation_error")
    assert {e["field"] for e in body["errors"]} == {"device_name"}
