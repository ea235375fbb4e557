"""RFC 9457 problem responses and the RFC 6750 challenges of token errors."""

from __future__ import annotations

import json

import pytest

import api.domain.errors
from api.domain.errors import (
    DomainError,
    EmailTaken,
    MfaRequired,
    RateLimited,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
    ValidationFailed,
)
from api.errors import PROBLEMS, problem, problem_of


def body_of(error: DomainError) -> dict[str, object]:
    response = problem(error)
    assert response.mimetype == "application/problem+json"
    assert response.status_code == problem_of(error).status
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


def test_every_domain_error_has_its_own_row_in_the_one_table() -> None:
    classes = {
        cls
        for cls in vars(api.domain.errors).values()
        if isinstance(cls, type) and issubclass(cls, DomainError)
    }
    assert classes - PROBLEMS.keys() == set()


def test_a_refusal_by_a_limit_names_when_to_retry() -> None:
    response = problem(RateLimited(retry_after=7, limit=5, remaining=-1))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["RateLimit-Remaining"] == "0"


def test_a_password_answered_with_mfa_required_carries_no_challenge() -> None:
    assert "WWW-Authenticate" not in problem(MfaRequired(mfa_token="t", methods=("totp",))).headers
    assert problem(MfaRequired()).headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
