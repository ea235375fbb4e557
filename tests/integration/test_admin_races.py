"""Holes a security review found in the admin and login paths, each closed: a login racing a
demotion, the last admin deleting itself, a promotion of an address anyone may have
registered, and a failed-login record that can't be written."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import text

from api.admin.first_admin import FirstAdmin
from api.config.settings import Settings
from api.domain.audit import AuditTrail
from api.domain.clock import utc_now
from api.domain.errors import ValidationFailed
from tests.integration.admin_helpers import admin_token, random_email, role_of
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness

PASSWORD = "a long enough passphrase"


async def test_a_login_racing_a_demotion_gets_no_admin_token_that_survives_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = await admin_token(harness, "root@example.com")
    victim = await harness.register("rogue@example.com")
    promoted = await harness.client.patch(
        f"/admin/users/{victim['id']}", json={"role": "admin"}, headers=bearer(root)
    )
    assert promoted.status_code == 200
    passwords = harness.resources.passwords
    real_verify = passwords.verify
    checking, go_on = asyncio.Event(), asyncio.Event()

    async def held_verify(password_hash: str, password: str) -> bool:
        # The login has read the account (role admin) and is checking the password.
        ok = await real_verify(password_hash, password)
        checking.set()
        await go_on.wait()
        return ok

    monkeypatch.setattr(passwords, "verify", held_verify)
    login = asyncio.create_task(
        harness.client.post(
            "/auth/login", json={"email": "rogue@example.com", "password": PASSWORD}
        )
    )
    await checking.wait()
    monkeypatch.setattr(passwords, "verify", real_verify)
    demoted = await harness.client.patch(
        f"/admin/users/{victim['id']}", json={"role": "user"}, headers=bearer(root)
    )
    assert demoted.status_code == 200 and demoted.json()["role"] == "user"
    go_on.set()
    # The session the login read the admin role for lost to the demotion: the login is
    # answered as one made after it, with the role the account has now.
    raced = (await login).json()
    assert role_of(raced["access_token"]) == "user"
    listing = await harness.client.get("/admin/users", headers=bearer(raced["access_token"]))
    assert listing.status_code == 403 and listing.json()["code"] == "forbidden"
    again = await harness.client.patch(
        f"/admin/users/{victim['id']}",
        json={"role": "admin"},
        headers=bearer(raced["access_token"]),
    )
    assert again.status_code == 403
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(raced["refresh_token"]))
    assert refreshed.status_code == 200
    assert role_of(refreshed.json()["access_token"]) == "user"


async def test_the_last_admin_cannot_delete_its_own_account(harness: Harness) -> None:
    _, root = await admin_token(harness, "only@example.com")
    answer = await harness.client.request(
        "DELETE", "/me", json={"password": PASSWORD}, headers=bearer(root)
    )
    assert answer.status_code == 409 and answer.json()["code"] == "last_admin"
    assert (await harness.client.get("/me", headers=bearer(root))).status_code == 200


async def test_promoting_an_existing_account_needs_its_own_password(harness: Harness) -> None:
    # An attacker registers the address the operator will make the first admin.
    await harness.register("ops-admin@corp.example", "the attacker's own password")
    resources = harness.resources
    first_admin = FirstAdmin(
        resources.database, resources.passwords, AuditTrail(b"key", utc_now), resources.settings
    )
    with pytest.raises(ValidationFailed):
        await first_admin.promote("Ops-Admin@Corp.example", "what the operator typed")
    tokens = await harness.login("ops-admin@corp.example", "the attacker's own password")
    listing = await harness.client.get("/admin/users", headers=bearer(tokens["access_token"]))
    assert listing.status_code == 403


async def test_a_wrong_password_keeps_its_reservation_even_when_its_record_fails(
    settings: Settings,
) -> None:
    limited = replace(
        settings,
        rate_limits_enabled=True,
        login_failure_limit="3/15 minutes",
        login_rate_limit="1000/minute",
    )
    # The app's own pools, as served (each statement its own transaction), so Postgres can
    # refuse the audit rows while everything else keeps working.
    _, harness = await start_harness(limited)
    email = random_email()
    suffix = uuid.uuid4().hex[:12]
    try:
        async with harness.client:
            user = await harness.register(email)
            async with harness.resources.engine.begin() as conn:
                await conn.execute(
                    text(
                        f"CREATE FUNCTION refuse_audit_{suffix}() RETURNS trigger "
                        "LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'audit refused'; END$$"
                    )
                )
                await conn.execute(
                    text(
                        f"CREATE TRIGGER refuse_audit_{suffix} BEFORE INSERT ON audit_events "
                        f"FOR EACH ROW WHEN (NEW.user_id = '{user['id']}') "
                        f"EXECUTE FUNCTION refuse_audit_{suffix}()"
                    )
                )
            statuses = []
            for _ in range(10):
                answer = await harness.client.post(
                    "/auth/login", json={"email": email, "password": "a wrong guess 123"}
                )
                statuses.append(answer.status_code)
            print(f"wrong guesses with the audit refused: {statuses}")
            # Three checks ran and kept their reservations; the rest were refused unhashed.
            assert statuses.count(429) == 7
    finally:
        async with harness.resources.engine.begin() as conn:
            await conn.execute(
                text(f"DROP TRIGGER IF EXISTS refuse_audit_{suffix} ON audit_events")
            )
            await conn.execute(text(f"DROP FUNCTION IF EXISTS refuse_audit_{suffix}()"))
        await stop_harness(harness, email)
