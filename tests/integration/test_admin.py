"""The admin API: permissions, listings, role and disabled changes that take effect at once."""

from __future__ import annotations

import httpx

from tests.integration.admin_helpers import admin_token, set_role
from tests.integration.conftest import Harness, bearer

ADMIN_ROUTES = [
    ("GET", "/admin/users"),
    ("GET", "/admin/users/00000000-0000-0000-0000-000000000000"),
    ("PATCH", "/admin/users/00000000-0000-0000-0000-000000000000"),
    ("DELETE", "/admin/users/00000000-0000-0000-0000-000000000000/sessions"),
    ("GET", "/admin/audit-events"),
]


async def test_admin_routes_answer_401_without_a_token_and_403_without_the_permission(
    harness: Harness,
) -> None:
    _, user_token = await harness.user_with_token("plain@example.com")
    answers = []
    for method, path in ADMIN_ROUTES:
        anonymous = await harness.client.request(method, path, json={})
        plain = await harness.client.request(method, path, json={}, headers=bearer(user_token))
        answers.append((anonymous.json()["code"], plain.status_code, plain.json()["code"]))
    print(f"admin routes without token / with a user's token: {answers}")
    assert answers == [("token_missing", 403, "forbidden")] * len(ADMIN_ROUTES)


async def test_access_tokens_carry_sorted_permissions_and_verify_passes_them_on(
    harness: Harness,
) -> None:
    _, token = await admin_token(harness)
    _, user_token = await harness.user_with_token("plain@example.com")
    admin = await harness.client.get("/auth/verify", headers=bearer(token))
    user = await harness.client.get("/auth/verify", headers=bearer(user_token))
    assert admin.headers["X-Auth-Role"] == "admin"
    assert admin.headers["X-Auth-Permissions"] == "audit:read,users:read,users:write"
    assert user.headers["X-Auth-Permissions"] == ""


async def test_a_role_of_the_setting_grants_its_permissions(make_harness: object) -> None:
    harness = await make_harness(  # type: ignore[operator]
        role_permissions={"user": (), "admin": (), "auditor": ("audit:read",)}
    )
    await harness.register("auditor@example.com")
    await set_role(harness, "auditor@example.com", "auditor")
    token = (await harness.login("auditor@example.com"))["access_token"]
    events = await harness.client.get("/admin/audit-events", headers=bearer(token))
    users = await harness.client.get("/admin/users", headers=bearer(token))
    assert (events.status_code, users.status_code) == (200, 403)


async def test_users_are_listed_newest_first_in_keyset_pages_with_an_email_prefix(
    harness: Harness,
) -> None:
    _, token = await admin_token(harness)
    for n in range(5):
        await harness.register(f"Page.{n}@Example.com")
    await harness.register("page_x@example.com")  # `_` must not be a wildcard
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", "email": "PAGE."} | ({"cursor": cursor} if cursor else {})
        answer = await harness.client.get("/admin/users", params=params, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [u["email"] for u in body["users"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    print(f"email prefix 'PAGE.': {len(seen)} users in {pages} pages of 2")
    # One rolled-back transaction: every created_at is the same here, so the id decides the
    # order (tests/e2e/test_admin_acceptance.py sees newest first across transactions).
    assert sorted(seen) == [f"Page.{n}@example.com" for n in range(5)]
    assert pages == 3
    assert set(body["users"][0]) == {"id", "email", "role", "disabled", "created_at", "updated_at"}


async def test_bad_listing_parameters_are_validation_errors(harness: Harness) -> None:
    _, token = await admin_token(harness)
    for params in (
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4IiwgInkiXQ"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
    ):
        answer = await harness.client.get("/admin/users", params=params, headers=bearer(token))
        assert (answer.status_code, answer.json()["code"]) == (422, "validation_error"), params
    for params in ({"since": "yesterday"}, {"user_id": "nope"}, {"since": "2026-01-01T00:00:00"}):
        answer = await harness.client.get(
            "/admin/audit-events", params=params, headers=bearer(token)
        )
        assert answer.status_code == 422, params


async def test_unknown_users_are_not_found(harness: Harness) -> None:
    _, token = await admin_token(harness)
    for method, path in ADMIN_ROUTES[1:4]:
        for user_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            answer = await harness.client.request(
                method,
                path.replace("00000000-0000-0000-0000-000000000000", user_id),
                json={"disabled": True},
                headers=bearer(token),
            )
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


async def test_an_unknown_role_is_refused(harness: Harness) -> None:
    _, token = await admin_token(harness)
    user = await harness.register("plain@example.com")
    answer = await harness.client.patch(
        f"/admin/users/{user['id']}", json={"role": "root"}, headers=bearer(token)
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "validation_error")


async def test_an_admin_neither_demotes_nor_disables_itself_but_another_admin_may(
    harness: Harness,
) -> None:
    admin, token = await admin_token(harness)
    path = f"/admin/users/{admin['id']}"
    for change in ({"role": "user"}, {"disabled": True}):
        answer = await harness.client.patch(path, json=change, headers=bearer(token))
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    _, second = await admin_token(harness, "second@example.com")
    answer = await harness.client.patch(path, json={"role": "user"}, headers=bearer(second))
    assert answer.status_code == 200
    assert answer.json()["role"] == "user"


async def _refused_everywhere(client: httpx.AsyncClient, tokens: dict[str, str]) -> list[str]:
    access = bearer(tokens["access_token"])
    answers = [
        await client.get("/auth/verify", headers=access),
        await client.post("/auth/verify/api", headers=access),
        await client.get("/me", headers=access),
        await client.get("/auth/sessions", headers=access),
        await client.post("/auth/logout-all", headers=access),
        await client.post("/auth/refresh", headers=bearer(tokens["refresh_token"])),
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
    ]
    return [a.json()["code"] for a in answers]


async def test_disabling_refuses_every_token_at_once_and_re_enabling_revives_none(
    harness: Harness,
) -> None:
    _, token = await admin_token(harness)
    user = await harness.register("victim@example.com")
    phone, laptop = (
        await harness.login("victim@example.com"),
        await harness.login("victim@example.com"),
    )
    disabled = await harness.client.patch(
        f"/admin/users/{user['id']}", json={"disabled": True}, headers=bearer(token)
    )
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    codes = await _refused_everywhere(harness.client, phone) + await _refused_everywhere(
        harness.client, laptop
    )
    login = await harness.client.post(
        "/auth/login", json={"email": "victim@example.com", "password": "a long enough passphrase"}
    )
    print(f"disabled user's tokens: {codes}; login {login.json()['code']}")
    assert set(codes) == {"token_revoked", "account_disabled"}
    assert codes.count("account_disabled") == 4  # the refreshes
    assert login.json()["code"] == "account_disabled"

    enabled = await harness.client.patch(
        f"/admin/users/{user['id']}", json={"disabled": False}, headers=bearer(token)
    )
    assert enabled.json()["disabled"] is False
    codes = await _refused_everywhere(harness.client, phone)
    assert set(codes) == {"token_revoked"}
    fresh = await harness.login("victim@example.com")
    me = await harness.client.get("/me", headers=bearer(fresh["access_token"]))
    assert me.status_code == 200


async def test_a_role_change_revokes_the_old_tokens(harness: Harness) -> None:
    _, token = await admin_token(harness)
    user = await harness.register("promoted@example.com")
    old = await harness.login("promoted@example.com")
    answer = await harness.client.patch(
        f"/admin/users/{user['id']}", json={"role": "admin"}, headers=bearer(token)
    )
    assert answer.json()["role"] == "admin"
    assert set(await _refused_everywhere(harness.client, old)) == {"token_revoked"}
    new = await harness.login("promoted@example.com")
    listed = await harness.client.get("/admin/users", headers=bearer(new["access_token"]))
    assert listed.status_code == 200


async def test_an_admin_signs_a_user_out_everywhere(harness: Harness) -> None:
    _, token = await admin_token(harness)
    user = await harness.register("out@example.com")
    tokens = await harness.login("out@example.com")
    answer = await harness.client.delete(
        f"/admin/users/{user['id']}/sessions", headers=bearer(token)
    )
    assert answer.status_code == 204
    assert set(await _refused_everywhere(harness.client, tokens)) == {"token_revoked"}
    assert (await harness.login("out@example.com"))["access_token"]


async def test_the_admin_routes_are_in_the_openapi_document_with_their_permission(
    harness: Harness,
) -> None:
    document = (await harness.client.get("/openapi.json")).json()
    listed = document["paths"]["/admin/users"]["get"]
    assert listed["x-permissions"] == ["users:read"]
    assert {"bearer": ["users:read"]} in listed["security"]
    assert "403" in listed["responses"]
    assert {p["name"] for p in listed["parameters"]} == {"limit", "cursor", "email"}
    patch = document["paths"]["/admin/users/{user_id}"]["patch"]
    assert patch["x-permissions"] == ["users:write"]
    assert "409" in patch["responses"]
    events = document["paths"]["/admin/audit-events"]["get"]
    assert events["x-permissions"] == ["audit:read"]
