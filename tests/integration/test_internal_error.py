"""An unexpected exception is a 500 internal_error problem, never the exception's text."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from api import create_app
from api.config.settings import Settings
from api.edge.bridge import AsgiApp
from api.security.guards import public
from tests.integration.problems import assert_problem

SECRET_DETAIL = "secret detail of the failure"


def boom() -> str:
    raise RuntimeError(SECRET_DETAIL)


async def boom_async() -> str:
    raise RuntimeError(SECRET_DETAIL)


@pytest.fixture
async def failing_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    # No request was served yet, so Flask still accepts routes; they bypass the
    # guard (added by create_app), hence `public`.
    app.add_url_rule("/boom", view_func=public(boom))
    app.add_url_rule("/boom-async", view_func=public(boom_async))
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
