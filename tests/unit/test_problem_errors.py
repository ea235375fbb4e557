"""RFC 9457 problem responses and the RFC 6750 challenges of token errors."""

from __future__ import annotations

import json

import pytest

from api.errors import (
    ApiError,
    EmailTaken,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
    ValidationFailed,
    problem,
)


def body_of(error: ApiError) -> dict[str, object]:
    response = problem(error)
    assert response.mimetype == "application/problem+json"
    assert response.status_code == error.status
    return dict(json.loads(response.get_data()))


def test_problem_renders_the_standard_members() -> None:
    assert body_of(EmailTaken()) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "code": "email_taken",
        "detail": EmailTaken.detail,
    }


def test_problem_content_type_is_problem_json() -> None:
    assert problem(EmailTaken()).headers["Content-Type"] == "application/problem+json"


def test_problem_detail_can_be_overridden() -> None:
    assert body_of(EmailTaken("Pick another email."))["detail"] == "Pick another email."


def test_validation_failed_adds_errors() -> None:
    errors = [{"field": "password", "message": "Use at least 12 characters."}]
    body = body_of(ValidationFailed(errors))
    assert body["status"] == 422
    assert body["code"] == "validation_error"
    assert body["errors"] == errors


def test_token_missing_carries_bare_bearer_challenge() -> None:
    response = problem(TokenMissing())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(response.get_data())["code"] == "token_missing"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TokenInvalid(), "token_invalid"),
        (TokenExpired(), "token_expired"),
        (TokenRevoked(), "token_revoked"),
    ],
)
def test_token_errors_carry_invalid_token_challenge(error: TokenError, code: str) -> None:
    response = problem(error)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert json.loads(response.get_data())["code"] == code
