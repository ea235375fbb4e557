"""Real nginx and Caddy, configured with the recipes of docs/gateways/, in front of a service:
the gateway asks /auth/verify before every request and passes the identity on."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.gateways import Caddy, EchoService, Gateway, Nginx
from tests.e2e.server import Server, settings_env

METHODS = ("GET", "POST", "DELETE")
ROUNDS = 10  # requests of each method, concurrently, per check


@pytest.fixture(scope="module")
def service() -> Iterator[EchoService]:
    service = EchoService()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def behind(e2e_settings: Settings) -> Iterator[Server]:
    """The API as deployed behind the gateway: trusting its one hop, logging each request."""
    server = Server(settings_env(replace(e2e_settings, trusted_proxy_hops=1, access_log=True)))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=[Nginx, Caddy], ids=["nginx", "caddy"])
def gateway(
    request: pytest.FixtureRequest, behind: Server, service: EchoService
) -> Iterator[Gateway]:
    gateway: Gateway = request.param(behind.port, service.port)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def through(
    client: httpx.AsyncClient, headers: dict[str, str], rounds: int = ROUNDS
) -> list[httpx.Response]:
    """GET, POST (with a body) and DELETE of the protected service, `rounds` each, at once."""

    async def one(method: str, i: int) -> httpx.Response:
        body = f'{{"order": {i}}}' if method == "POST" else None
        return await client.request(method, f"/orders/{i}", headers=headers, content=body)

    return await asyncio.gather(*(one(m, i) for m in METHODS for i in range(rounds)))


async def test_the_gateway_refuses_requests_without_a_token(
    gateway: Gateway, service: EchoService
) -> None:
    before = len(service.requests)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        answers = await through(client, {"X-Auth-User": "forged"})
    statuses = [r.status_code for r in answers]
    print(f"{gateway.name}, no token: 401s {statuses.count(401)} of {len(statuses)}")
    assert statuses == [401] * len(statuses)
    assert len(service.requests) == before, "a request without a token reached the service"


async def test_a_valid_token_reaches_the_service_with_the_identity_then_logout_closes_it(
    gateway: Gateway, service: EchoService, http: httpx.AsyncClient, users: Users
) -> None:
    email = await users.register(http)
    tokens = await users.login(http, email)
    me = (await http.get("/me", headers=bearer(tokens["access_token"]))).json()
    forged = {
        "X-Auth-User": "someone-else",
        "X-Auth-Role": "admin",
        "X-Auth-Session": "x",
        "X-Auth-Permissions": "users:write",
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        answers = await through(client, {**forged, **bearer(tokens["access_token"])})
        seen = [r.json() for r in answers if r.status_code == 200]
        print(f"{gateway.name}, valid token: 200s {len(seen)} of {len(answers)}")
        assert [r.status_code for r in answers] == [200] * len(answers)
        # Exactly what the API answered, however many identity headers that is; no forgery.
        verify = await http.get("/auth/verify", headers=bearer(tokens["access_token"]))
        expected = {
            k: v for k, v in verify.headers.items() if k.lower().startswith("x-auth-") and v
        }
        assert expected["x-auth-user"] == me["id"]
        assert expected["x-auth-session"] == tokens["session_id"]
        assert expected["x-auth-role"] == "user"
        assert {s["method"] for s in seen} == set(METHODS)
        received = [{k.lower(): v for k, v in s["auth"].items() if v} for s in seen]
        forgeries = sum(v in forged.values() for r in received for v in r.values())
        print(f"{gateway.name}, forged X-Auth-* values that reached the service: {forgeries}")
        assert all(r == expected for r in received), received[0]
        assert all(
            s["body"] == f'{{"order": {s["path"].rsplit("/", 1)[1]}}}'
            for s in seen
            if s["method"] == "POST"
        )

        logout = await http.post("/auth/logout", headers=bearer(tokens["access_token"]))
        assert logout.status_code == 204
        # From the moment the logout is answered: every request, every method, at once.
        after = await through(client, bearer(tokens["access_token"]))
    statuses = [r.status_code for r in after]
    print(f"{gateway.name}, after logout: 401s {statuses.count(401)} of {len(statuses)}")
    assert statuses == [401] * len(statuses)


async def test_a_cookie_request_that_changes_state_must_echo_the_csrf_token(
    gateway: Gateway, service: EchoService, http: httpx.AsyncClient, users: Users
) -> None:
    """The recipes forward the method and the cookie: a cross-site form can't get through."""
    email = await users.register(http)
    login = await http.post(
        "/auth/login",
        json={"email": email, "password": "a long enough passphrase", "transport": "cookie"},
    )
    access = login.cookies["access_token_cookie"]
    csrf = login.cookies["csrf_access_token"]
    cookie = {"Cookie": f"access_token_cookie={access}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        read = await client.get("/orders", headers=cookie)
        forged = await client.post("/orders", headers=cookie, content="{}")
        echoed = await client.post(
            "/orders", headers={**cookie, "X-CSRF-Token": csrf}, content="{}"
        )
    print(
        f"{gateway.name}, cookie: GET {read.status_code}, POST without CSRF "
        f"{forged.status_code}, with CSRF {echoed.status_code}"
    )
    assert (read.status_code, forged.status_code, echoed.status_code) == (200, 403, 200)


async def test_the_api_names_each_request_by_the_gateways_id_never_the_clients(
    gateway: Gateway, behind: Server
) -> None:
    """The API keeps a trusted proxy's X-Request-ID: the recipes set it themselves."""
    chosen = f"client-chosen-{uuid.uuid4().hex}"
    logged_before = len(_logged_request_ids(behind))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        # No token: the check is answered by Flask, which names every request it answers.
        answers = await through(client, {"X-Request-ID": chosen})
    # The access line is written once the answer is sent: wait for the last ones.
    deadline = time.monotonic() + 10
    while len(ids := _logged_request_ids(behind)[logged_before:]) < len(answers):
        assert time.monotonic() < deadline, ids
        await asyncio.sleep(0.05)
    print(f"{gateway.name}: request ids the API logged {ids[:3]}... ({len(ids)})")
    assert [r.status_code for r in answers] == [401] * len(answers)
    assert len(ids) == len(answers)
    assert chosen not in behind.output()
    assert "-" not in ids and len(set(ids)) == len(ids)


def _logged_request_ids(server: Server) -> list[str]:
    return re.findall(r"request_id=(\S+)", server.output())
