"""CORS: an allowlist of exact origins, with credentials; any other origin gets no header."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.conftest import Harness, HarnessFactory, bearer

APP = "http://app.test:5173"
OTHER_APP = "https://admin.example.com"
# Near misses of APP, and sites that are not on the list at all.
REFUSED = [
    "http://app.test:5174",
    "https://app.test:5173",
    "http://APP.test:5173",
    "http://app.test:5173/",
    "http://evil.test",
    "null",
    "*",
]
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def allowing(make_harness: HarnessFactory) -> Harness:
    return await make_harness(cors_allowed_origins=(APP, OTHER_APP))


async def test_preflight_of_an_allowed_origin_says_what_the_page_may_send(
    make_harness: HarnessFactory,
) -> None:
    client = (await allowing(make_harness)).client
    response = await client.options("/auth/login", headers={"Origin": APP, **PREFLIGHT})
    assert response.status_code == 204
    assert response.content == b""
    headers = response.headers
    assert headers["access-control-allow-origin"] == APP
    assert headers["access-control-allow-credentials"] == "true"
    assert {"GET", "POST", "DELETE"} <= set(headers["access-control-allow-methods"].split(", "))
    assert {"Content-Type", "Authorization", "X-CSRF-Token"} <= set(
        headers["access-control-allow-headers"].split(", ")
    )
    assert headers["access-control-max-age"] == "600"
    assert headers["vary"] == "Origin"


async def test_any_other_origin_gets_no_cors_header_on_preflights_or_answers(
    make_harness: HarnessFactory,
) -> None:
    harness = await allowing(make_harness)
    _, token = await harness.user_with_token()
    leaked = 0
    for origin in REFUSED:
        preflight = await harness.client.options("/me", headers={"Origin": origin, **PREFLIGHT})
        me = await harness.client.get("/me", headers={"Origin": origin, **bearer(token)})
        assert me.status_code == 200
        leaked += bool(cors_headers(preflight)) + bool(cors_headers(me))
        assert preflight.status_code != 204
        assert "Origin" in me.headers["vary"]
    print(f"refused origins: {len(REFUSED)}, answers with a CORS header: {leaked}")
    assert leaked == 0


async def test_without_an_allowlist_no_answer_carries_cors_headers(harness: Harness) -> None:
    _, token = await harness.user_with_token()
    preflight = await harness.client.options("/auth/login", headers={"Origin": APP, **PREFLIGHT})
    me = await harness.client.get("/me", headers={"Origin": APP, **bearer(token)})
    assert cors_headers(preflight) == {} and cors_headers(me) == {}
    assert "vary" not in me.headers


async def test_every_answer_to_an_allowed_origin_carries_credentials_cors(
    make_harness: HarnessFactory,
) -> None:
    """Flask's answers, the lanes' (verify, JWKS) and problems alike."""
    harness = await allowing(make_harness)
    _, token = await harness.user_with_token()
    client, origin = harness.client, {"Origin": OTHER_APP}
    answers = {
        "me": await client.get("/me", headers={**origin, **bearer(token)}),
        "me without a token": await client.get("/me", headers=origin),
        "verify lane": await client.get("/auth/verify", headers={**origin, **bearer(token)}),
        "verify, cookie path": await client.get("/auth/verify", headers=origin),
        "jwks lane": await client.get("/.well-known/jwks.json", headers=origin),
        "not found": await client.get("/nowhere", headers=origin),
        "too large": await client.post(
            "/auth/login", content=b"x" * 70_000, headers={**origin, "Content-Type": "text/plain"}
        ),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    print(f"answers checked: {statuses}")
    assert statuses["verify lane"] == 204 and statuses["me without a token"] == 401
    for name, response in answers.items():
        assert response.headers["access-control-allow-origin"] == OTHER_APP, name
        assert response.headers["access-control-allow-credentials"] == "true", name
        assert "WWW-Authenticate" in response.headers["access-control-expose-headers"], name
        assert response.headers.get_list("vary") == ["Origin"], name


async def test_the_verify_routes_answer_a_preflight_like_any_other_method(
    make_harness: HarnessFactory,
) -> None:
    """A gateway forwards preflights too; without a token they are refused, never waved on."""
    client = (await allowing(make_harness)).client
    response = await client.options("/auth/verify/orders/42", headers={"Origin": APP, **PREFLIGHT})
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert response.headers["access-control-allow-origin"] == APP


async def test_concurrent_requests_of_many_origins_each_get_only_their_own(
    make_harness: HarnessFactory,
) -> None:
    harness = await allowing(make_harness)
    _, token = await harness.user_with_token()
    origins = [APP, OTHER_APP, *REFUSED] * 10

    async def ask(origin: str) -> tuple[str, httpx.Response]:
        if len(origin) % 2:
            return origin, await harness.client.options(
                "/auth/sessions", headers={"Origin": origin, **PREFLIGHT}
            )
        return origin, await harness.client.get(
            "/auth/verify", headers={"Origin": origin, **bearer(token)}
        )

    answers = await asyncio.gather(*(ask(o) for o in origins))
    wrong = 0
    allowed = 0
    for origin, response in answers:
        granted = response.headers.get("access-control-allow-origin")
        expected = origin if origin in (APP, OTHER_APP) else None
        wrong += granted != expected
        allowed += granted is not None
        assert response.headers.get("access-control-allow-origin") != "*"
    print(f"requests: {len(answers)}, allowed: {allowed}, wrong origin granted: {wrong}")
    assert wrong == 0
    assert allowed == 20
