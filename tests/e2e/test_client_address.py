"""Behind one trusted proxy, on the real server: a forwarded entry that is no IP is ignored."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import Server, settings_env

CONCURRENT = 10


@pytest.fixture(scope="module")
def proxied_server(e2e_settings: Settings) -> Iterator[Server]:
    # A name of its own, so tests that count the session server's connections never see it.
    proxied = replace(
        e2e_settings,
        trusted_proxy_hops=1,
        db_application_name=f"{e2e_settings.db_application_name}-proxied",
    )
    server = Server(settings_env(proxied), workers=1)
    yield server
    server.stop()


async def test_garbage_forwarded_for_logs_in_from_the_socket_address(
    proxied_server: Server, users: Users
) -> None:
    garbage = [f"{n:02d}" + "-not-an-ip" * 5 + "x" * 8 for n in range(CONCURRENT)]
    assert {len(entry) for entry in garbage} == {60}
    async with httpx.AsyncClient(base_url=proxied_server.url, timeout=30) as http:
        email = await users.register(http)
        responses = await asyncio.gather(
            *(
                http.post(
                    "/auth/login",
                    json={"email": email, "password": PASSWORD},
                    headers={"X-Forwarded-For": entry},
                )
                for entry in garbage
            )
        )
        statuses = Counter(r.status_code for r in responses)
        print(f"real server, 60-character X-Forwarded-For: {dict(statuses)}")
        assert statuses == {200: CONCURRENT}
        token = responses[0].json()["access_token"]
        sessions = await http.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert {s["ip"] for s in sessions.json()["sessions"]} == {"127.0.0.1"}
    assert "not an IP address" in proxied_server.output()


async def test_an_underscored_forwarded_for_never_names_the_client(
    proxied_server: Server, users: Users
) -> None:
    # A WSGI server would read X_Forwarded_For as X-Forwarded-For and append it to the
    # proxy's entry; the bridge drops such names. Half the logins reach Flask (a cookie),
    # half the login lane, all at once, each claiming another address.
    async with httpx.AsyncClient(base_url=proxied_server.url, timeout=30) as http:
        email = await users.register(http)
        responses = await asyncio.gather(
            *(
                http.post(
                    "/auth/login",
                    json={"email": email, "password": PASSWORD},
                    headers=httpx.Headers(
                        [
                            ("X-Forwarded-For", "203.0.113.9"),
                            ("X_Forwarded_For", f"198.51.100.{n}"),
                            *([("Cookie", "unrelated=1")] if n % 2 else []),
                        ]
                    ),
                )
                for n in range(CONCURRENT)
            )
        )
        assert Counter(r.status_code for r in responses) == {200: CONCURRENT}
        token = responses[0].json()["access_token"]
        sessions = await http.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert [s["ip"] for s in sessions.json()["sessions"]] == ["203.0.113.9"] * CONCURRENT
