"""RFC 9457 problem responses: the one table mapping domain errors to API.md's answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from api.domain.errors import (
    AccountDisabled,
    DomainError,
    EmailTaken,
    EmailUnverified,
    Forbidden,
    FreshTokenRequired,
    HashingBusy,
    InternalError,
    InvalidCredentials,
    LastAdmin,
    LinkInvalid,
    MalformedJson,
    MethodNotAllowed,
    MfaAlreadyEnrolled,
    MfaEnrollmentRequired,
    MfaInvalid,
    MfaKeyMissing,
    MfaRequired,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RateLimited,
    RefreshTokenReused,
    RequestTimeout,
    ServiceUnavailable,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
    UnsupportedMediaType,
    ValidationFailed,
)
from api.edge.request_id import current_request_id
from db.errors import StoreUnavailable

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
BEARER_CHALLENGE = 'Bearer error="invalid_token"'
INVALID_TOKEN = {"WWW-Authenticate": BEARER_CHALLENGE}
# Seconds a client should wait: long enough for a restarted Postgres or Redis.
RETRY_LATER = {"Retry-After": "5"}


@dataclass(frozen=True)
class Problem:
    """How one domain error is answered: its status, API.md code and fixed headers."""

    status: int
    code: str
    headers: Mapping[str, str] = field(default_factory=dict)


# Every domain error's answer, in one place; a subclass without a row is answered as
# its nearest listed ancestor.
PROBLEMS: dict[type[DomainError], Problem] = {
    DomainError: Problem(400, "bad_request"),
    MalformedJson: Problem(400, "malformed_json"),
    ValidationFailed: Problem(422, "validation_error"),
    UnsupportedMediaType: Problem(415, "unsupported_media_type"),
    PayloadTooLarge: Problem(413, "payload_too_large"),
    RequestTimeout: Problem(408, "request_timeout"),
    InvalidCredentials: Problem(401, "invalid_credentials"),
    # Token errors carry RFC 6750's challenge; a missing token gets the bare one.
    TokenError: Problem(401, "token_invalid", INVALID_TOKEN),
    TokenMissing: Problem(401, "token_missing", {"WWW-Authenticate": "Bearer"}),
    TokenInvalid: Problem(401, "token_invalid", INVALID_TOKEN),
    TokenExpired: Problem(401, "token_expired", INVALID_TOKEN),
    TokenRevoked: Problem(401, "token_revoked", INVALID_TOKEN),
    RefreshTokenReused: Problem(401, "refresh_token_reused", INVALID_TOKEN),
    FreshTokenRequired: Problem(401, "fresh_token_required", INVALID_TOKEN),
    AccountDisabled: Problem(403, "account_disabled"),
    Forbidden: Problem(403, "forbidden"),
    NotFound: Problem(404, "not_found"),
    MethodNotAllowed: Problem(405, "method_not_allowed"),
    EmailTaken: Problem(409, "email_taken"),
    LastAdmin: Problem(409, "last_admin"),
    RateLimited: Problem(429, "rate_limited"),
    ServiceUnavailable: Problem(503, "service_unavailable", RETRY_LATER),
    HashingBusy: Problem(503, "service_unavailable", {"Retry-After": "2"}),
    InternalError: Problem(500, "internal_error"),
    # A token without a second factor is a token problem (RFC 6750's challenge); the
    # answer to a correct password is not (see _headers).
    MfaRequired: Problem(401, "mfa_required", INVALID_TOKEN),
    MfaInvalid: Problem(401, "mfa_invalid"),
    MfaEnrollmentRequired: Problem(403, "mfa_enrollment_required"),
    MfaAlreadyEnrolled: Problem(409, "mfa_already_enrolled"),
    MfaKeyMissing: Problem(503, "service_unavailable", RETRY_LATER),
    NotReady: Problem(503, "service_unavailable", RETRY_LATER),
    EmailUnverified: Problem(403, "email_unverified"),
    LinkInvalid: Problem(400, "link_invalid"),
}


_HTTP_ERRORS: dict[int, type[DomainError]] = {
    400: MalformedJson,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


# The titles this service has always sent: Python 3.13 renamed two of HTTPStatus's phrases
# (413 "Content Too Large", 422 "Unprocessable Content"), which would change the answers
# with the interpreter.
_TITLES = {413: "Request Entity Too Large", 422: "Unprocessable Entity"}


def problem_of(error: DomainError) -> Problem:
    """The row of PROBLEMS that answers `error`."""
    for cls in type(error).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    raise LookupError(type(error).__name__)  # unreachable: DomainError has a row


def _headers(error: DomainError, row: Problem) -> dict[str, str]:
    if isinstance(error, MfaRequired) and not error.token_lacks_factor:
        return {}
    if isinstance(error, RateLimited):
        return {
            "Retry-After": str(error.retry_after),
            "RateLimit-Limit": str(error.limit),
            "RateLimit-Remaining": str(max(error.remaining, 0)),
            "RateLimit-Reset": str(error.retry_after),
        }
    return dict(row.headers)


def problem_body(error: DomainError, request_id: str | None = None) -> bytes:
    """The RFC 9457 JSON document describing `error` (with the request's id, when known)."""
    row = problem_of(error)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(row.status) or HTTPStatus(row.status).phrase,
        "status": row.status,
        "code": row.code,
        "detail": error.message,
        **error.extra(),
    }
    if request_id is not None:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def problem_parts(
    error: DomainError, request_id: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of `error`'s problem response, for any way of sending it."""
    row = problem_of(error)
    headers = [("Content-Type", PROBLEM_JSON), *_headers(error, row).items()]
    return row.status, headers, problem_body(error, request_id)


def problem(error: DomainError) -> Response:
    """Render `error` as an application/problem+json Flask response, naming the request."""
    status, headers, body = problem_parts(error, current_request_id())
    return Response(body, status=status, headers=headers)


def from_store_failure(failure: StoreUnavailable) -> ServiceUnavailable:
    """The answer to a request whose Postgres or Redis did not answer (logged, not shown)."""
    logger.warning("%s unavailable", failure.store)
    return ServiceUnavailable()


def _from_http_exception(exc: HTTPException) -> Response:
    error_class = _HTTP_ERRORS.get(exc.code or 500)
    if error_class is None:
        return _unexpected(exc) if (exc.code or 500) >= 500 else problem(MalformedJson())
    response = problem(error_class())
    allowed = getattr(exc, "valid_methods", None)
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def unexpected_error(exc: Exception) -> InternalError:
    """The answer to an exception nothing expected (logged with its traceback, not shown)."""
    logger.exception("unhandled error", exc_info=exc)
    return InternalError()


def _unexpected(exc: Exception) -> Response:
    return problem(unexpected_error(exc))


def register_error_handlers(app: Flask) -> None:
    """Turn every exception raised while serving into problem+json."""
    app.register_error_handler(DomainError, problem)
    app.register_error_handler(
        StoreUnavailable, lambda failure: problem(from_store_failure(failure))
    )
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _unexpected)
