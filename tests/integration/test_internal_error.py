"""An unexpected exception is a 500 internal_error problem, never the exception's text."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from api import create_app
from api.config.settings import Settings
from api.edge.bridge import AsgiApp
from api.resources import resources
from api.security.guards import public
from tests.integration.problems import assert_problem

SECRET_DETAIL = "secret detail of the failure"
SECRET_IP = "203.0.113.77"
SECRET_AGENT = "secret-agent/1.0"


def boom() -> str:
    raise RuntimeError(SECRET_DETAIL)


async def boom_async() -> str:
    raise RuntimeError(SECRET_DETAIL)


_ORPHAN_SESSION = text(
    "INSERT INTO sessions (id, user_id, current_refresh_jti, expires_at, ip, user_agent) "
    "VALUES (gen_random_uuid(), :user_id, gen_random_uuid(), now(), :ip, :user_agent)"
)


async def boom_in_postgres() -> str:
    # What a login racing DELETE /me met before its INSERT became conditional: a foreign
    # key violation, whose parameters (address, user agent) must stay out of every log.
    async with resources().database.statements() as statements:
        connection = statements.users._connection
        params = {"user_id": uuid.uuid4(), "ip": SECRET_IP, "user_agent": SECRET_AGENT}
        await connection.execute(_ORPHAN_SESSION, params)
    return "unreachable"


@pytest.fixture
async def failing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    # No request was served yet, so Flask still accepts routes; they bypass the
    # guard (added by create_app), hence `public`.
    app.add_url_rule("/boom", view_func=public(boom))
    app.add_url_rule("/boom-async", view_func=public(boom_async))
    app.add_url_rule("/boom-in-postgres", view_func=public(boom_in_postgres))
    asgi = AsgiApp(app)
    await asgi.runtime.start()
    transport = httpx.ASGITransport(app=asgi)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await asgi.runtime.stop()


@pytest.mark.parametrize("path", ["/boom", "/boom-async"])
async def test_unexpected_exception_is_internal_error_without_details(
    failing_client: httpx.AsyncClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = await failing_client.get(path)
    body = assert_problem(response, 500, "internal_error")
    assert SECRET_DETAIL not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "An unexpected error occurred."
    # The details go to the log instead.
    assert any(record.exc_info for record in caplog.records)


async def test_a_logged_database_error_carries_no_sql_parameters(
    failing_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await failing_client.get("/boom-in-postgres")
    assert_problem(response, 500, "internal_error")
    logged = [r for r in caplog.records if r.exc_info]
    assert logged, "the failure was not logged"
    assert "violates foreign key constraint" in caplog.text
    assert SECRET_IP not in caplog.text and SECRET_AGENT not in caplog.text
    assert "hidden due to hide_parameters" in caplog.text
