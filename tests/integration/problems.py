"""Assertions on RFC 9457 problem responses, shared by the integration tests."""

from __future__ import annotations

from typing import Any

import httpx

STANDARD_MEMBERS = {"type", "title", "status", "code", "detail"}
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json with `status` and `code`; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= STANDARD_MEMBERS, body
    assert body["status"] == status
    assert body["code"] == code, body
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    """The fields a validation_error body names."""
    return {error["field"] for error in body["errors"]}


def without_request_id(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem body without its `request_id`, which names one request and differs by design."""
    return {name: value for name, value in problem.items() if name != "request_id"}
