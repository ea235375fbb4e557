"""POST /auth/register against real Postgres."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Harness
from tests.integration.problems import assert_problem

PASSWORD = "a long enough passphrase"


async def test_register_creates_user_with_location(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "  New@Example.com ", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.headers["Location"] == "/me"
    body = response.json()
    assert set(body) == {"id", "email", "role", "created_at"}
    assert body["email"] == "New@example.com"
    assert body["role"] == "user"
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")


async def test_register_existing_email_in_other_case_is_email_taken(harness: Harness) -> None:
    await harness.register("taken@example.com")
    response = await harness.client.post(
        "/auth/register", json={"email": "TAKEN@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "email_taken"


async def test_password_is_taken_exactly_as_sent_spaces_included(harness: Harness) -> None:
    padded = "  padded passphrase here  "
    await harness.register("padded@example.com", padded)
    trimmed = await harness.client.post(
        "/auth/login", json={"email": "padded@example.com", "password": padded.strip()}
    )
    assert_problem(trimmed, 401, "invalid_credentials")
    await harness.login("padded@example.com", padded)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (" " * 12, "Use a password that is not only spaces."),
        ("a" * 12, "Use a password that is not one character repeated."),
        ("   short   ", "Use at least 12 characters."),
        ("", "String should have at least 1 character"),
    ],
)
async def test_unacceptable_password_gets_a_readable_message(
    client: httpx.AsyncClient, password: str, message: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "weak@example.com", "password": password}
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [{"field": "password", "message": message}]
