"""GET /auth/verify answers any method and any path below /auth/verify/ the same way
(Envoy's ext_authz HTTP service forwards the original method and appends the original
path to its prefix); a body, if sent, is ignored. Bearer tokens are answered by the
verify lane, cookies and missing tokens by Flask: both must agree."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from tests.integration.conftest import Harness, bearer
from tests.integration.problems import assert_problem

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PATHS = ["/auth/verify", "/auth/verify/", "/auth/verify/api/orders/42?page=2", "/auth/verify/a%2Fb"]


async def _ask(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: object
) -> httpx.Response:
    return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
async def test_any_method_and_path_below_verify_gets_the_identity(
    harness: Harness, method: str, path: str
) -> None:
    user, token = await harness.user_with_token(f"{method.lower()}@example.com")
    # A body is ignored, whatever it holds.
    response = await _ask(
        harness.client, method, path, headers=bearer(token), content=b'{"not": "read"'
    )
    assert response.status_code == 204, response.text
    assert response.headers["X-Auth-User"] == user["id"]
    assert response.headers["X-Auth-Role"] == "user"
    assert response.headers["X-Auth-Session"]
    assert response.content == b""


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", [m for m in METHODS if m != "HEAD"])
async def test_any_method_and_path_below_verify_without_a_token_is_token_missing(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await _ask(client, method, path, json={"ignored": True})
    body = assert_problem(response, 401, "token_missing")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["detail"]


async def test_cookie_token_below_verify_keeps_the_csrf_rule(harness: Harness) -> None:
    user, _ = await harness.user_with_token("cookie-below@example.com")
    await harness.login("cookie-below@example.com", transport="cookie")
    csrf = harness.client.cookies["csrf_access_token"]
    try:
        read = await harness.client.get("/auth/verify/api/x")
        # A state-changing request forwarded by a gateway must echo the CSRF cookie,
        # so a cross-site form can't reach the upstream with the browser's cookie.
        unechoed = await harness.client.delete("/auth/verify/api/x")
        echoed = await harness.client.delete("/auth/verify/api/x", headers={"X-CSRF-Token": csrf})
    finally:
        harness.client.cookies.clear()
    assert read.status_code == 204 and read.headers["X-Auth-User"] == user["id"]
    assert_problem(unechoed, 403, "forbidden")
    assert echoed.status_code == 204 and echoed.headers["X-Auth-User"] == user["id"]


@pytest.mark.parametrize("header", ["X-Forwarded-Method", "X-Original-Method"])
async def test_a_gateway_that_checks_with_get_still_gets_the_csrf_rule(
    harness: Harness, header: str
) -> None:
    """Caddy's forward_auth and Traefik's ForwardAuth ask with GET and name the client's
    method in a header: a state-changing method there needs the CSRF echo; the header can
    never lift the rule from a state-changing request."""
    user, _ = await harness.user_with_token("forwarded-method@example.com")
    await harness.login("forwarded-method@example.com", transport="cookie")
    csrf = harness.client.cookies["csrf_access_token"]
    verify = harness.client.request
    try:
        answers = {
            "GET, forwarded GET": await verify("GET", "/auth/verify", headers={header: "GET"}),
            "GET, forwarded POST": await verify("GET", "/auth/verify", headers={header: "POST"}),
            "GET, forwarded delete": await verify(
                "GET", "/auth/verify", headers={header: " delete "}
            ),
            "GET, forwarded POST, echoed": await verify(
                "GET", "/auth/verify", headers={header: "POST", "X-CSRF-Token": csrf}
            ),
            "POST, forwarded GET": await verify("POST", "/auth/verify", headers={header: "GET"}),
        }
    finally:
        harness.client.cookies.clear()
    statuses = {name: r.status_code for name, r in answers.items()}
    print(f"{header}: {statuses}")
    assert statuses == {
        "GET, forwarded GET": 204,
        "GET, forwarded POST": 403,
        "GET, forwarded delete": 403,
        "GET, forwarded POST, echoed": 204,
        "POST, forwarded GET": 403,
    }
    assert answers["GET, forwarded POST, echoed"].headers["X-Auth-User"] == user["id"]


# Anything but exactly one safe method: a list, a header sent twice, an empty one.
NOT_ONE_SAFE_METHOD = {
    "POST,POST": [("POST,POST",)],
    "GET, POST": [("GET, POST",)],
    "GET,GET": [("GET,GET",)],
    "GET POST": [("GET POST",)],
    "empty": [("",)],
    "sent twice, GET and POST": [("GET",), ("POST",)],
    "sent twice, POST and POST": [("POST",), ("POST",)],
    "sent twice, GET and GET": [("GET",), ("GET",)],
    "unknown": [("PROPFIND",)],
}


@pytest.mark.parametrize("header", ["X-Forwarded-Method", "X-Original-Method"])
async def test_a_forwarded_method_other_than_exactly_one_safe_method_gets_the_csrf_rule(
    harness: Harness, header: str
) -> None:
    await harness.user_with_token("forwarded-list@example.com")
    await harness.login("forwarded-list@example.com", transport="cookie")
    csrf = harness.client.cookies["csrf_access_token"]
    unechoed: dict[str, int] = {}
    echoed: dict[str, int] = {}
    try:
        for name, values in NOT_ONE_SAFE_METHOD.items():
            sent = [(header, value) for (value,) in values]
            unechoed[name] = (await harness.client.get("/auth/verify", headers=sent)).status_code
            with_echo = [*sent, ("X-CSRF-Token", csrf)]
            echoed[name] = (await harness.client.get("/auth/verify", headers=with_echo)).status_code
        safe = {
            m: (await harness.client.get("/auth/verify", headers={header: m})).status_code
            for m in ["GET", "head", " OPTIONS "]
        }
    finally:
        harness.client.cookies.clear()
    print(f"{header}: without the echo {unechoed}; with it {echoed}; one safe method {safe}")
    assert unechoed == dict.fromkeys(NOT_ONE_SAFE_METHOD, 403)
    assert echoed == dict.fromkeys(NOT_ONE_SAFE_METHOD, 204)
    assert safe == dict.fromkeys(safe, 204)


async def test_paths_that_only_start_like_verify_are_not_found(harness: Harness) -> None:
    _, token = await harness.user_with_token("lookalike@example.com")
    response = await harness.client.get("/auth/verifyx", headers=bearer(token))
    assert_problem(response, 404, "not_found")


async def test_every_method_and_path_refuses_a_token_the_moment_after_logout(
    harness: Harness,
) -> None:
    _, token = await harness.user_with_token("logout-below@example.com")
    combos = list(itertools.product(METHODS, PATHS)) * 2
    before = await asyncio.gather(
        *(_ask(harness.client, m, p, headers=bearer(token)) for m, p in combos)
    )
    assert {r.status_code for r in before} == {204}
    logout = await harness.client.post("/auth/logout", headers=bearer(token))
    assert logout.status_code == 204
    after = await asyncio.gather(
        *(_ask(harness.client, m, p, headers=bearer(token)) for m, p in combos)
    )
    refused = [r for r in after if r.status_code == 401]
    print(f"before logout 204s: {len(before)} of {len(combos)}; after: 401s {len(refused)}")
    assert len(refused) == len(combos)
    for response in refused:
        if response.request.method != "HEAD":
            assert response.json()["code"] == "token_revoked"
