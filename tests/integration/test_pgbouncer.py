"""The session and revocation suites through PgBouncer in transaction pooling mode
(DATABASE_STATEMENT_CACHE_SIZE=0), started by the test in front of the test database.

The suites' tests are imported, so they run a second time here, where `settings` points
at PgBouncer. The harness's rolled-back transaction holds one server connection for the
test; the committed-writes test below makes transactions hop between server connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
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
