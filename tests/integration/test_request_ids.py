"""Every answer names its request in X-Request-ID: Flask's, the lanes', CORS preflights',
refused bodies' and unknown routes' alike; problems carry the same id in their body."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.conftest import Harness, HarnessFactory, bearer

APP = "http://app.test:5173"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST"}


def request_id(response: httpx.Response) -> str:
    values = response.headers.get_list("x-request-id")
    assert len(values) == 1, response.headers
    assert 1 <= len(values[0]) <= 128
    return values[0]


async def every_kind_of_answer(harness: Harness, token: str) -> dict[str, httpx.Response]:
    client = harness.client
    return {
        "verify lane 204": await client.get("/auth/verify", headers=bearer(token)),
        "verify lane 401": await client.get("/auth/verify", headers=bearer("not.a.token")),
        "verify view 401": await client.get("/auth/verify"),
        "jwks lane": await client.get("/.well-known/jwks.json"),
        "jwks view (HEAD)": await client.head("/.well-known/jwks.json"),
        "cors preflight lane": await client.options("/auth/login", headers=PREFLIGHT),
        "flask 200": await client.get("/me", headers=bearer(token)),
        "flask problem": await client.post("/auth/login", json={}),
        "unknown route": await client.get("/no/such/route"),
        "body too large": await client.post(
            "/auth/login",
            content=b"x" * (harness.runtime.settings.max_body_bytes + 1),
            headers={"Content-Type": "application/json"},
        ),
        "health": await client.get("/healthz"),
    }


async def test_every_kind_of_answer_carries_one_request_id_of_its_own(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(cors_allowed_origins=(APP,))
    _, token = await harness.user_with_token()
    answers = await every_kind_of_answer(harness, token)
    ids = {kind: request_id(response) for kind, response in answers.items()}
    assert answers["verify lane 204"].status_code == 204
    assert answers["jwks lane"].status_code == 200
    assert answers["cors preflight lane"].status_code == 204
    assert len(set(ids.values())) == len(ids)
    for kind, response in answers.items():
        if response.headers.get("content-type") == "application/problem+json":
            assert response.json()["request_id"] == ids[kind], kind


async def test_concurrent_lane_and_flask_answers_never_share_or_swap_ids(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    await harness.user_with_token()

    async def ask(n: int) -> None:
        sent = f"proxy-{n}"
        path = "/auth/verify" if n % 2 else "/auth/login"
        response = await (
            harness.client.get(path, headers={**bearer("bad"), "X-Request-ID": sent})
            if n % 2
            else harness.client.post(path, json={}, headers={"X-Request-ID": sent})
        )
        assert request_id(response) == sent
        assert response.json()["request_id"] == sent

    await asyncio.gather(*(ask(n) for n in range(200)))


async def test_a_client_cannot_choose_the_id_without_a_trusted_proxy(
    harness: Harness,
) -> None:
    for path in ("/auth/verify", "/.well-known/jwks.json", "/healthz"):
        response = await harness.client.get(
            path, headers={**bearer("bad"), "X-Request-ID": "chosen-by-client"}
        )
        assert request_id(response) != "chosen-by-client"
