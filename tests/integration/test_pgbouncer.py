"""The session and revocation suites through PgBouncer in transaction pooling mode
(DATABASE_STATEMENT_CACHE_SIZE=0), started by the test in front of the test database.

The suites' tests are imported, so they run a second time here, where `settings` points
at PgBouncer. The harness's rolled-back transaction holds one server connection for the
test; the committed-writes test below makes transactions hop between server connections."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
from tests.conftest import ROOT
from tests.integration.admin_helpers import role_of
from tests.integration.conftest import bearer, start_harness, stop_harness
from tests.integration.test_account import (  # noqa: F401
    test_change_password_keeps_current_session_and_revokes_the_others,
    test_delete_me_deletes_account_and_revokes_everything,
)
from tests.integration.test_login import (  # noqa: F401
    test_each_login_opens_a_new_session,
    test_login_answers_tokens_and_session,
    test_login_records_the_device_session,
    test_login_unknown_email_and_wrong_password_answer_identically,
)
from tests.integration.test_logout_and_sessions import (  # noqa: F401
    test_delete_session_signs_out_that_device_only,
    test_logout_all_revokes_every_device_and_allows_a_new_login,
    test_logout_revokes_only_the_current_session,
    test_sessions_lists_active_sessions_newest_first_with_current_flag,
)
from tests.integration.test_refresh import (  # noqa: F401
    test_refresh_after_logout_is_token_revoked,
    test_refresh_rotates_the_refresh_token_and_issues_non_fresh_access,
    test_refresh_token_reused_after_grace_revokes_session,
    test_refresh_updates_last_used_at,
)
from tests.integration.test_register import (  # noqa: F401
    test_register_creates_user_with_location,
    test_register_existing_email_in_other_case_is_email_taken,
)
from tests.pgbouncer import OwnPgBouncer

pytestmark = pytest.mark.heavy

PASSWORD = "a long enough passphrase"
USERS = 12


@pytest.fixture(scope="module")
def pgbouncer(database_url: str) -> Iterator[OwnPgBouncer]:
    # Two server connections for five client ones: transactions must hop between them.
    bouncer = OwnPgBouncer(database_url, server_pool_size=2)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="module")
def settings(settings: Settings, pgbouncer: OwnPgBouncer) -> Settings:
    """The test settings, with PgBouncer behind DATABASE_URL and no statement cache."""
    return replace(settings, database_url=pgbouncer.url, database_statement_cache_size=0)


async def _mobile_flow(client: httpx.AsyncClient, email: str) -> list[int]:
    """Register, log in, /me, refresh, /me, logout-all, /me: the statuses seen."""
    seen = []
    body = {"email": email, "password": PASSWORD}
    seen.append((await client.post("/auth/register", json=body)).status_code)
    login = await client.post("/auth/login", json=body)
    seen.append(login.status_code)
    tokens = login.json()
    seen.append((await client.get("/me", headers=bearer(tokens["access_token"]))).status_code)
    refreshed = await client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    seen.append(refreshed.status_code)
    access = refreshed.json()["access_token"]
    seen.append((await client.get("/me", headers=bearer(access))).status_code)
    seen.append((await client.post("/auth/logout-all", headers=bearer(access))).status_code)
    seen.append((await client.get("/me", headers=bearer(access))).status_code)
    return seen


async def test_concurrent_committed_flows_hop_server_connections_without_errors(
    settings: Settings, pgbouncer: OwnPgBouncer
) -> None:
    _, harness = await start_harness(settings)
    emails = [f"bouncer-{uuid.uuid4().hex[:12]}@example.com" for _ in range(USERS)]
    try:
        async with harness.client:
            flows = await asyncio.gather(*(_mobile_flow(harness.client, e) for e in emails))
    finally:
        await stop_harness(harness, *emails)
    expected = [201, 200, 200, 200, 200, 204, 401]
    good = sum(flow == expected for flow in flows)
    print(f"\nflows through pgbouncer (2 server connections): {good} of {USERS} as expected")
    assert flows == [expected] * USERS
    assert "prepared statement" not in pgbouncer.log()


def _flask(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "api", *args],
        cwd=ROOT,
        env={**os.environ, **settings.to_env()},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_admin_and_purge_work_through_pgbouncer(
    settings: Settings, pgbouncer: OwnPgBouncer
) -> None:
    # The commands build their engines as the server does: no statement cache, and single
    # statements in transactions, or a statement prepared on one server connection is run
    # on another.
    assert settings.to_env()["DATABASE_STATEMENT_CACHE_SIZE"] == "0"
    email = f"bouncer-admin-{uuid.uuid4().hex[:12]}@example.com"
    _, harness = await start_harness(settings)
    try:
        outcomes = [
            _flask(settings, "create-admin", email, stdin=PASSWORD + "\n"),
            _flask(settings, "create-admin", email, stdin=PASSWORD + "\n"),
            _flask(settings, "purge"),
            _flask(settings, "purge"),
        ]
        async with harness.client:
            login = await harness.client.post(
                "/auth/login", json={"email": email, "password": PASSWORD}
            )
    finally:
        await stop_harness(harness, email)
    print(f"\ncommands through pgbouncer: exits {[o.returncode for o in outcomes]}")
    assert [o.returncode for o in outcomes] == [0, 0, 0, 0], [o.stderr for o in outcomes]
    assert outcomes[0].stdout == f"created {email} as admin\n"
    assert outcomes[1].stdout == f"{email} is already an admin; nothing changed\n"
    assert all(o.stdout.startswith("purged sessions: ") for o in outcomes[2:])
    assert login.status_code == 200 and role_of(login.json()["access_token"]) == "admin"
    assert "prepared statement" not in pgbouncer.log()
