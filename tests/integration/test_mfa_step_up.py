"""Step-up: MFA_REQUIRED_ROLES on routes needing those roles' permissions, the composable
`mfa_required` guard, and an administrator's reset of a user's second factor."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from flask import Response, jsonify

from api import create_app
from api.edge.bridge import AsgiApp
from api.security.guards import fresh_required, mfa_required, permission_required, protect_views
from api.security.permissions import USERS_READ
from tests.integration.admin_helpers import set_role
from tests.integration.conftest import Harness, HarnessFactory, bearer
from tests.integration.mfa_helpers import (
    claims,
    code,
    enrolled_user,
    password_step,
    start_enrolment,
    steady,
)
from tests.integration.problems import assert_problem

ADMIN = "admin@example.com"


async def _mfa_login(harness: Harness, email: str, secret: str, step: int = 0) -> dict[str, Any]:
    mfa_token = await password_step(harness, email)
    counter = await steady()
    response = await harness.client.post(
        "/auth/mfa/verify", json={"mfa_token": mfa_token, "code": code(secret, counter + step)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def strict(make_harness: HarnessFactory) -> Harness:
    """The default rule: admins use their permissions only with a second factor."""
    return await make_harness(mfa_required_roles=("admin",))


async def test_an_admin_without_a_second_factor_is_refused_on_admin_routes(
    strict: Harness,
) -> None:
    await strict.register(ADMIN)
    await set_role(strict, ADMIN, "admin")
    access = (await strict.login(ADMIN))["access_token"]
    for method, path in (("GET", "/admin/users"), ("GET", "/admin/audit-events")):
        response = await strict.client.request(method, path, headers=bearer(access))
        assert_problem(response, 403, "mfa_enrollment_required")
    # Routes that need no permission stay open, so the admin can enrol.
    me = await strict.client.get("/me", headers=bearer(access))
    assert me.status_code == 200 and me.json()["mfa_enabled"] is False


async def test_an_admin_token_without_otp_in_amr_is_refused_and_one_with_it_passes(
    strict: Harness,
) -> None:
    secret, _, before = await enrolled_user(strict, ADMIN, role="admin")
    # Issued before the enrolment: amr ["pwd"] only. Such tokens keep working
    # where no second factor is needed (GET /me), never where one is.
    stale = before["access_token"]
    assert (await strict.client.get("/me", headers=bearer(stale))).status_code == 200
    refused = await strict.client.get("/admin/users", headers=bearer(stale))
    assert_problem(refused, 401, "mfa_required")
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "mfa_token" not in refused.json()
    tokens = await _mfa_login(strict, ADMIN, secret)
    assert claims(tokens["access_token"])["amr"] == ["pwd", "otp"]
    listed = await strict.client.get("/admin/users", headers=bearer(tokens["access_token"]))
    assert listed.status_code == 200
    # A refreshed token keeps the session's amr, so it keeps passing.
    refreshed = await strict.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    again = await strict.client.get(
        "/admin/users", headers=bearer(refreshed.json()["access_token"])
    )
    assert again.status_code == 200


async def test_the_permission_check_comes_before_the_second_factor(strict: Harness) -> None:
    await strict.register("plain@example.com")
    access = (await strict.login("plain@example.com"))["access_token"]
    response = await strict.client.get("/admin/users", headers=bearer(access))
    assert_problem(response, 403, "forbidden")


async def test_an_empty_mfa_required_roles_lets_admins_in_with_a_password(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(mfa_required_roles=())
    await harness.register(ADMIN)
    await set_role(harness, ADMIN, "admin")
    access = (await harness.login(ADMIN))["access_token"]
    assert (await harness.client.get("/admin/users", headers=bearer(access))).status_code == 200


async def test_mfa_required_composes_with_fresh_and_permission_guards(
    make_harness: HarnessFactory,
) -> None:
    # The step-up guard on a route of its own, for a role outside MFA_REQUIRED_ROLES.
    harness = await make_harness(mfa_required_roles=())
    flask_app = create_app(harness.resources.settings)

    @fresh_required
    @mfa_required
    @permission_required(USERS_READ)
    async def sensitive() -> Response:
        return jsonify(ok=True)

    flask_app.add_url_rule("/test/sensitive", "sensitive", sensitive, methods=["GET"])
    protect_views(flask_app)
    asgi = AsgiApp(flask_app)
    resources = await asgi.runtime.start(bind=harness.bind)
    transport = httpx.ASGITransport(app=asgi)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            direct = Harness(client, asgi.runtime, resources, harness.bind)
            await direct.register("user@example.com")
            user = (await direct.login("user@example.com"))["access_token"]
            assert_problem(
                await client.get("/test/sensitive", headers=bearer(user)), 403, "forbidden"
            )
            await set_role(direct, "user@example.com", "admin")
            admin = (await direct.login("user@example.com"))["access_token"]
            assert_problem(
                await client.get("/test/sensitive", headers=bearer(admin)),
                403,
                "mfa_enrollment_required",
            )
            secret, _, _ = await enrolled_user(direct, ADMIN)
            await set_role(direct, ADMIN, "admin")
            tokens = await _mfa_login(direct, ADMIN, secret)
            passed = await client.get("/test/sensitive", headers=bearer(tokens["access_token"]))
            assert passed.status_code == 200
            # The same session refreshed: a second factor still, but no longer fresh.
            stale = await client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
            assert_problem(
                await client.get("/test/sensitive", headers=bearer(stale.json()["access_token"])),
                401,
                "fresh_token_required",
            )
            # An admin's password-only token from before its enrolment: now mfa_required.
            await direct.register("second-admin@example.com")
            await set_role(direct, "second-admin@example.com", "admin")
            before = (await direct.login("second-admin@example.com"))["access_token"]
            enrolment = await start_enrolment(direct, before)
            confirmed = await client.post(
                "/me/mfa/totp/confirm",
                json={"code": code(enrolment["secret"], await steady())},
                headers=bearer(before),
            )
            assert confirmed.status_code == 200
            assert_problem(
                await client.get("/test/sensitive", headers=bearer(before)), 401, "mfa_required"
            )
    finally:
        await asgi.runtime.stop()


async def test_an_admin_resets_a_users_second_factor_and_signs_them_out(
    strict: Harness,
) -> None:
    secret, _, _ = await enrolled_user(strict, ADMIN)
    await set_role(strict, ADMIN, "admin")
    admin = await _mfa_login(strict, ADMIN, secret)
    headers = bearer(admin["access_token"])
    user_secret, _, user_tokens = await enrolled_user(strict, "phone-lost@example.com")
    user_id = claims(user_tokens["access_token"])["sub"]
    reset = await strict.client.delete(f"/admin/users/{user_id}/mfa", headers=headers)
    assert reset.status_code == 204
    revoked = await strict.client.get("/me", headers=bearer(user_tokens["access_token"]))
    assert_problem(revoked, 401, "token_revoked")
    # The password alone logs in again, and the old secret is gone.
    fresh = await strict.login("phone-lost@example.com")
    assert claims(fresh["access_token"])["amr"] == ["pwd"]
    me = await strict.client.get("/me", headers=bearer(fresh["access_token"]))
    assert me.json()["mfa_enabled"] is False
    events = await strict.client.get(
        "/admin/audit-events", params={"type": "admin.mfa_reset"}, headers=headers
    )
    [event] = events.json()["events"]
    assert event["user_id"] == user_id and event["actor_id"] == claims(admin["access_token"])["sub"]
    assert user_secret not in events.text


async def test_the_reset_route_refuses_unknown_users_and_callers_without_users_write(
    strict: Harness,
) -> None:
    secret, _, _ = await enrolled_user(strict, ADMIN)
    await set_role(strict, ADMIN, "admin")
    headers = bearer((await _mfa_login(strict, ADMIN, secret))["access_token"])
    for user_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = await strict.client.delete(f"/admin/users/{user_id}/mfa", headers=headers)
        assert_problem(response, 404, "not_found")
    await strict.register("plain@example.com")
    plain = (await strict.login("plain@example.com"))["access_token"]
    someone = claims(plain)["sub"]
    assert_problem(
        await strict.client.delete(f"/admin/users/{someone}/mfa", headers=bearer(plain)),
        403,
        "forbidden",
    )
    assert_problem(await strict.client.delete(f"/admin/users/{someone}/mfa"), 401, "token_missing")
