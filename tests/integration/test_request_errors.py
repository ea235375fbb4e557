"""Malformed requests to the JSON routes: every one a problem+json, never a stack trace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.problems import assert_problem, error_fields

PASSWORD = "a long enough passphrase"
BODY_ROUTES = ["/auth/register", "/auth/login"]
JSON = {"Content-Type": "application/json"}
MAX_BODY_BYTES = 64 * 1024


def valid(**fields: Any) -> dict[str, Any]:
    return {"email": "a@example.com", "password": PASSWORD, **fields}


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a@example.com",',
        b"{'email': 'a@example.com'}",
        b"[]",
        b'["a@example.com"]',
        b'"a@example.com"',
        b"42",
        b"null",
        b"",
        b"\xff\xfe{}",
    ],
)
async def test_body_that_is_not_a_json_object_is_malformed_json(
    client: httpx.AsyncClient, path: str, raw: bytes
) -> None:
    response = await client.post(path, content=raw, headers=JSON)
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_duplicate_member_names_are_malformed_json(
    client: httpx.AsyncClient, path: str
) -> None:
    raw = b'{"email": "a@example.com", "email": "b@example.com", "password": "x"}'
    response = await client.post(path, content=raw, headers=JSON)
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_text_body_is_unsupported_media_type(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path, content=json.dumps(valid()), headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_form_body_is_unsupported_media_type(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, data=valid())
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_body_over_max_body_bytes_with_content_length_is_payload_too_large(
    client: httpx.AsyncClient, path: str
) -> None:
    raw = json.dumps(valid(padding="x" * MAX_BODY_BYTES)).encode()
    response = await client.post(path, content=raw, headers=JSON)
    assert_problem(response, 413, "payload_too_large")


async def chunks(raw: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_chunked_body_over_max_body_bytes_is_payload_too_large(
    client: httpx.AsyncClient, path: str
) -> None:
    raw = json.dumps(valid(padding="x" * MAX_BODY_BYTES)).encode()
    response = await client.post(path, content=chunks(raw), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_chunked_body_under_max_body_bytes_is_read(client: httpx.AsyncClient) -> None:
    raw = json.dumps(valid()).encode()
    response = await client.post("/auth/register", content=chunks(raw, 8), headers=JSON)
    assert response.status_code == 201, response.text


# Broken fields both routes reject alike, and the field each must name.
SHARED_FIELD_ERRORS = [
    ({"password": PASSWORD}, "email"),
    ({"email": "a@example.com"}, "password"),
    ({"email": 123, "password": PASSWORD}, "email"),
    ({"email": "a@example.com", "password": True}, "password"),
    ({"email": "not-an-email", "password": PASSWORD}, "email"),
    ({"email": "a@example.com", "password": "x" * 1025}, "password"),
    ({"email": "a@example.com", "password": "long enough\x00passphrase"}, "password"),
]


@pytest.mark.parametrize("path", BODY_ROUTES)
@pytest.mark.parametrize(("body", "field"), SHARED_FIELD_ERRORS)
async def test_invalid_field_is_validation_error_naming_it(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert field in error_fields(problem)
    assert all(error["message"] for error in problem["errors"])


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_lone_surrogate_in_raw_json_is_validation_error(
    client: httpx.AsyncClient, path: str
) -> None:
    raw = b'{"email": "a@example.com", "password": "a long enough \\ud800 passphrase"}'
    response = await client.post(path, content=raw, headers=JSON)
    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == {"password"}


@pytest.mark.parametrize("password", ["short pass", "password1234", "PASSWORD1234", "x" * 1025])
async def test_register_password_breaking_a_rule_is_validation_error(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "a@example.com", "password": password}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == {"password"}


async def test_login_device_name_with_nul_is_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", json=valid(device_name="Pixel\x008"))
    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == {"device_name"}


async def test_login_unknown_transport_is_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", json=valid(transport="carrier-pigeon"))
    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == {"transport"}


async def test_unknown_route_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404, "not_found")


async def test_wrong_method_is_method_not_allowed_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/login")
    assert_problem(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert "GET" not in allowed
