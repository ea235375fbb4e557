"""RFC 9457 problem responses: one exception tree carrying the error codes of API.md."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any, ClassVar

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from api.edge.request_id import current_request_id
from db.errors import StoreUnavailable

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
BEARER_CHALLENGE = 'Bearer error="invalid_token"'


class ApiError(Exception):
    """An error the client can act on; subclasses set the status and the API.md code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    detail: ClassVar[str] = "The request could not be processed."
    headers: dict[str, str]

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.message = detail or self.detail
        self.headers = headers or {}

    def extra(self) -> dict[str, Any]:
        """Members added to the problem body beside the standard ones."""
        return {}


class MalformedJson(ApiError):
    status, code = 400, "malformed_json"
    detail = "The request body must be a JSON object."


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"
    detail = "The request body has invalid fields."

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None):
        super().__init__(detail)
        self.errors = errors

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"
    detail = "Send the body as application/json."


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"
    detail = "The request body is too large."


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"
    detail = "The request was not received in time; send it again."


class InvalidCredentials(ApiError):
    status, code = 401, "invalid_credentials"
    detail = "The email or password is incorrect."


class TokenError(ApiError):
    """A 401 caused by a token: carries the RFC 6750 challenge."""

    status, code = 401, "token_invalid"
    detail = "The token is invalid."
    challenge: ClassVar[str] = BEARER_CHALLENGE

    def __init__(self, detail: str | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": self.challenge})


class TokenMissing(TokenError):
    code, detail, challenge = "token_missing", "A bearer token is required.", "Bearer"


class TokenInvalid(TokenError):
    pass


class TokenExpired(TokenError):
    code, detail = "token_expired", "The token has expired."


class TokenRevoked(TokenError):
    code, detail = "token_revoked", "The token has been revoked."


class RefreshTokenReused(TokenError):
    code = "refresh_token_reused"
    detail = "This refresh token was already used; the session has been revoked."


class FreshTokenRequired(TokenError):
    code = "fresh_token_required"
    detail = "This action needs a token from a password login; log in again."


class AccountDisabled(ApiError):
    status, code = 403, "account_disabled"
    detail = "This account has been disabled."


class Forbidden(ApiError):
    status, code = 403, "forbidden"
    detail = "You do not have permission to do this."


class NotFound(ApiError):
    status, code = 404, "not_found"
    detail = "The resource was not found."


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"
    detail = "The method is not allowed for this resource."


class EmailTaken(ApiError):
    status, code = 409, "email_taken"
    detail = "An account with this email already exists."


class LastAdmin(ApiError):
    status, code = 409, "last_admin"
    detail = "The change would leave no active administrator."


class RateLimited(ApiError):
    status, code = 429, "rate_limited"
    detail = "Too many requests; retry later."


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"
    detail = "A backing service is unavailable; retry later."
    # Seconds a client should wait: long enough for a restarted Postgres or Redis.
    retry_after = "5"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail, headers={"Retry-After": self.retry_after, **(headers or {})})


class HashingBusy(ServiceUnavailable):
    """More password checks wait than the hashing threads can serve soon: refused at once."""

    detail = "Too many password checks are waiting; retry shortly."
    retry_after = "2"


class InternalError(ApiError):
    status, code = 500, "internal_error"
    detail = "An unexpected error occurred."


_HTTP_ERRORS: dict[int, type[ApiError]] = {
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


def problem_body(error: ApiError, request_id: str | None = None) -> bytes:
    """The RFC 9457 JSON document describing `error` (with the request's id, when known)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(error.status) or HTTPStatus(error.status).phrase,
        "status": error.status,
        "code": error.code,
        "detail": error.message,
        **error.extra(),
    }
    if request_id is not None:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def problem_parts(
    error: ApiError, request_id: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of `error`'s problem response, for any way of sending it."""
    headers = [("Content-Type", PROBLEM_JSON), *error.headers.items()]
    return error.status, headers, problem_body(error, request_id)


def problem(error: ApiError) -> Response:
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


def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return problem(InternalError())


def register_error_handlers(app: Flask) -> None:
    """Turn every exception raised while serving into problem+json."""
    app.register_error_handler(ApiError, problem)
    app.register_error_handler(
        StoreUnavailable, lambda failure: problem(from_store_failure(failure))
    )
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(Exception, _unexpected)


class NotReady(ServiceUnavailable):
    """Readiness failed; the body says which backing service did not answer."""

    def __init__(self, checks: dict[str, str]) -> None:
        failed = ", ".join(
            f"{name} {state}" for name, state in sorted(checks.items()) if state != "ok"
        )
        super().__init__(f"Not ready: {failed}.")
        self.checks = checks

    def extra(self) -> dict[str, Any]:
        return {"checks": self.checks}
