"""Edges of the contract: a refresh body without a token, null members of an admin change,
and numbers JSON does not have (NaN, Infinity) on every route that takes a body."""

from __future__ import annotations

import re

import pytest

from tests.integration.admin_helpers import admin_token, random_email
from tests.integration.conftest import Harness, bearer
from tests.integration.problems import assert_problem

NOT_JSON_NUMBERS = [
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"a": {"b": [1, NaN]}}',
    b'{"email": "a@example.com", "password": "a long enough passphrase", "x": [-Infinity]}',
]
JSON = {"Content-Type": "application/json"}


async def test_a_refresh_body_without_a_token_is_token_missing(harness: Harness) -> None:
    answer = await harness.client.post("/auth/refresh", json={})
    print(f"POST /auth/refresh {{}}: {answer.status_code} {answer.json().get('code')}")
    assert_problem(answer, 401, "token_missing")
    assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_a_refresh_body_without_a_token_leaves_the_cookie_to_answer(
    harness: Harness,
) -> None:
    email = random_email()
    await harness.register(email)
    await harness.login(email, transport="cookie")
    csrf = harness.client.cookies["csrf_refresh_token"]
    answer = await harness.client.post("/auth/refresh", json={}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "cookie"


@pytest.mark.parametrize(
    "change", [{"role": None}, {"disabled": None}, {"role": None, "disabled": True}]
)
async def test_null_members_of_an_admin_change_are_validation_errors(
    harness: Harness, change: dict[str, object]
) -> None:
    _, token = await admin_token(harness)
    user = await harness.register(random_email())
    answer = await harness.client.patch(
        f"/admin/users/{user['id']}", json=change, headers=bearer(token)
    )
    print(f"PATCH {change}: {answer.status_code}")
    body = assert_problem(answer, 422, "validation_error")
    assert {e["field"] for e in body["errors"]} == {k for k, v in change.items() if v is None}
    listed = await harness.client.get(f"/admin/users/{user['id']}", headers=bearer(token))
    assert (listed.json()["role"], listed.json()["disabled"]) == ("user", False)


async def test_nan_and_infinity_are_malformed_json_on_every_route_with_a_body(
    harness: Harness,
) -> None:
    admin, token = await admin_token(harness)
    session_id = (await harness.login("admin@example.com"))["session_id"]
    document = (await harness.client.get("/openapi.json")).json()
    routes = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert ("post", "/auth/refresh") in routes and ("patch", "/admin/users/{user_id}") in routes
    seen = {}
    for method, path in routes:
        url = re.sub(r"\{user_id\}", admin["id"], path).replace("{session_id}", session_id)
        # A refresh with a bearer token would take the header; every other route needs it.
        headers = JSON if path == "/auth/refresh" else {**JSON, **bearer(token)}
        for raw in NOT_JSON_NUMBERS:
            answer = await harness.client.request(method, url, content=raw, headers=headers)
            seen[(method, path, raw)] = (answer.status_code, answer.json().get("code"))
    wrong = {key: value for key, value in seen.items() if value != (400, "malformed_json")}
    print(f"{len(seen)} bodies with NaN/Infinity to {len(routes)} routes; not 400: {wrong}")
    assert wrong == {}
    me = await harness.client.get("/me", headers=bearer(token))
    assert me.status_code == 200
