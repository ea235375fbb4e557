"""POST /auth/register against real Postgres."""

from __future__ import annotations

import httpx

from tests.integration.conftest import Harness

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
