"""The admin routes over the real server, whose first admin was made with
`flask --app api create-admin`; disabling and demotion race refreshes and lose none."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users, _plain_dsn
from tests.e2e.server import ROOT, settings_env

ROUNDS = 12
REFRESHES_PER_SESSION = 2


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_admin(
    settings: Settings, email: str, password: str | None
) -> subprocess.CompletedProcess[str]:
    """Run the documented command, the password on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "api", "create-admin", email],
        cwd=ROOT,
        env={**os.environ, **settings_env(settings)},
        input="" if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Admin:
    email: str
    id: str
    token: str


@pytest.fixture(scope="module")
def admin_email(e2e_settings: Settings) -> Iterator[str]:
    email = "first-admin-e2e@example.com"
    made = create_admin(e2e_settings, email, PASSWORD)
    assert made.returncode == 0, made.stderr
    print(f"create-admin: {made.stdout.strip()!r}")
    assert made.stdout == f"created {email} as admin\n"
    yield email
    asyncio.run(_delete_user(e2e_settings.database_url, email))


async def _delete_user(database_url: str, email: str) -> None:
    conn = await asyncpg.connect(_plain_dsn(database_url))
    try:
        ids = await conn.fetch("DELETE FROM users WHERE email = $1 RETURNING id", email)
        await conn.execute(
            "DELETE FROM audit_events WHERE user_id = ANY($1::uuid[])"
            " OR actor_id = ANY($1::uuid[])",
            [r["id"] for r in ids],
        )
    finally:
        await conn.close()


@pytest.fixture
async def admin(http: httpx.AsyncClient, admin_email: str) -> AsyncIterator[Admin]:
    answer = await http.post("/auth/login", json={"email": admin_email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    me = (await http.get("/me", headers=_bearer(token))).json()
    assert me["role"] == "admin"
    yield Admin(admin_email, me["id"], token)


async def test_create_admin_promotes_an_existing_account_and_refuses_weak_passwords(
    e2e_settings: Settings, http: httpx.AsyncClient, users: Users
) -> None:
    email = await users.register(http)
    # An address anyone may have registered: promotion needs the account's own password.
    squatted = create_admin(e2e_settings, email, "what the operator would type")
    promoted = create_admin(e2e_settings, email, PASSWORD)
    again = create_admin(e2e_settings, email, PASSWORD)
    weak = create_admin(e2e_settings, users.new_email(), "short")
    print(
        f"create-admin: {promoted.stdout.strip()!r}, {again.stdout.strip()!r}, "
        f"weak: exit {weak.returncode} {weak.stderr.strip()!r}, "
        f"wrong password: exit {squatted.returncode} {squatted.stderr.strip()!r}"
    )
    assert squatted.returncode == 1 and len(squatted.stderr.strip().splitlines()) == 1
    assert "password" in squatted.stderr
    assert promoted.returncode == 0 and promoted.stdout.startswith(f"promoted {email} to admin")
    assert again.stdout == f"{email} is already an admin; nothing changed\n"
    assert weak.returncode == 1 and len(weak.stderr.strip().splitlines()) == 1
    tokens = await users.login(http, email)
    verified = await http.get("/auth/verify", headers=_bearer(tokens["access_token"]))
    assert verified.headers["X-Auth-Permissions"] == "audit:read,users:read,users:write"


async def test_admin_routes_over_the_real_server(
    http: httpx.AsyncClient, users: Users, admin: Admin
) -> None:
    plain = await users.login(http, await users.register(http))
    assert (
        await http.get("/admin/users", headers=_bearer(plain["access_token"]))
    ).status_code == 403
    assert (await http.get("/admin/users")).status_code == 401
    emails = [await users.register(http) for _ in range(3)]
    listed = await http.get("/admin/users", params={"limit": "3"}, headers=_bearer(admin.token))
    assert listed.status_code == 200
    # Newest first: separate transactions, so created_at orders them.
    assert [u["email"] for u in listed.json()["users"]] == list(reversed(emails))
    target = listed.json()["users"][0]
    one = await http.get(f"/admin/users/{target['id']}", headers=_bearer(admin.token))
    assert one.json()["email"] == emails[-1]
    itself = await http.patch(
        f"/admin/users/{admin.id}", json={"disabled": True}, headers=_bearer(admin.token)
    )
    assert (itself.status_code, itself.json()["code"]) == (403, "forbidden")
    out = await http.delete(f"/admin/users/{target['id']}/sessions", headers=_bearer(admin.token))
    assert out.status_code == 204
    events = await http.get(
        "/admin/audit-events", params={"user_id": target["id"]}, headers=_bearer(admin.token)
    )
    assert [e["type"] for e in events.json()["events"]] == [
        "admin.sessions_revoked",
        "email.verification_sent",
        "user.registered",
    ]
    assert "X-Request-ID" in events.headers


async def _refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/refresh", headers=_bearer(token))


async def _survivors(http: httpx.AsyncClient, returned: list[dict[str, str]]) -> int:
    checks = []
    for t in returned:
        checks += [
            http.get("/auth/verify", headers=_bearer(t["access_token"])),
            http.get("/me", headers=_bearer(t["access_token"])),
            _refresh(http, t["refresh_token"]),
        ]
    answers = await asyncio.gather(*checks)
    return sum(a.status_code in (200, 204) for a in answers)


async def _race(
    http: httpx.AsyncClient, users: Users, admin: Admin, change: dict[str, object]
) -> tuple[int, int, int]:
    """Rounds of refreshes racing the PATCH; (refreshes raced, tokens returned, survivors)."""
    raced = returned_total = survivors = 0
    for _ in range(ROUNDS):
        email = await users.register(http)
        sessions = [await users.login(http, email) for _ in range(3)]
        user_id = (await http.get("/me", headers=_bearer(sessions[0]["access_token"]))).json()["id"]
        *refreshes, answer = await asyncio.gather(
            *(
                _refresh(http, s["refresh_token"])
                for s in sessions
                for _ in range(REFRESHES_PER_SESSION)
            ),
            http.patch(f"/admin/users/{user_id}", json=change, headers=_bearer(admin.token)),
        )
        assert answer.status_code == 200, answer.text
        assert all(r.status_code in (200, 401, 403) for r in refreshes)
        returned = [r.json() for r in refreshes if r.status_code == 200]
        raced += len(refreshes)
        returned_total += len(returned)
        survivors += await _survivors(http, returned + sessions)
    return raced, returned_total, survivors


async def test_no_token_from_a_concurrent_refresh_outlives_disabling(
    http: httpx.AsyncClient, users: Users, admin: Admin
) -> None:
    raced, returned, survivors = await _race(http, users, admin, {"disabled": True})
    print(
        f"disable: survivors {survivors} of {returned} tokens returned by {raced} racing "
        f"refreshes (plus the 3 logins' tokens) over {ROUNDS} rounds"
    )
    assert survivors == 0


async def test_no_token_from_a_concurrent_refresh_outlives_a_role_change(
    http: httpx.AsyncClient, users: Users, admin: Admin
) -> None:
    raced, returned, survivors = await _race(http, users, admin, {"role": "admin"})
    print(
        f"role change: survivors {survivors} of {returned} tokens returned by {raced} racing "
        f"refreshes (plus the 3 logins' tokens) over {ROUNDS} rounds"
    )
    assert survivors == 0
