"""What can go wrong, in the service's own words: no HTTP status, header or code here.

The edge (api/errors.py) maps each class to its problem (status, code, headers) in one
table; services raise these and know nothing of how they are answered."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """An error the client can act on; `detail` is the sentence shown to it."""

    detail: ClassVar[str] = "The request could not be processed."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        self.message = detail or self.detail

    def extra(self) -> dict[str, Any]:
        """Members added to the problem body beside the standard ones."""
        return {}


class MalformedJson(DomainError):
    detail = "The request body must be a JSON object."


class ValidationFailed(DomainError):
    detail = "The request body has invalid fields."

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None):
        super().__init__(detail)
        self.errors = errors

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class UnsupportedMediaType(DomainError):
    detail = "Send the body as application/json."


class PayloadTooLarge(DomainError):
    detail = "The request body is too large."


class RequestTimeout(DomainError):
    detail = "The request was not received in time; send it again."


class InvalidCredentials(DomainError):
    detail = "The email or password is incorrect."


class TokenError(DomainError):
    """The presented token is not accepted."""

    detail = "The token is invalid."


class TokenMissing(TokenError):
    detail = "A bearer token is required."


class TokenInvalid(TokenError):
    pass


class TokenExpired(TokenError):
    detail = "The token has expired."


class TokenRevoked(TokenError):
    detail = "The token has been revoked."


class RefreshTokenReused(TokenError):
    detail = "This refresh token was already used; the session has been revoked."


class FreshTokenRequired(TokenError):
    detail = "This action needs a token from a password login; log in again."


class AccountDisabled(DomainError):
    detail = "This account has been disabled."


class Forbidden(DomainError):
    detail = "You do not have permission to do this."


class NotFound(DomainError):
    detail = "The resource was not found."


class MethodNotAllowed(DomainError):
    detail = "The method is not allowed for this resource."


class EmailTaken(DomainError):
    detail = "An account with this email already exists."


class LastAdmin(DomainError):
    detail = "The change would leave no active administrator."


class RateLimited(DomainError):
    """A limit refused the request; the numbers say when and how much is left."""

    detail = "Too many requests; retry later."

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int = 1,
        limit: int = 0,
        remaining: int = 0,
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining


class ServiceUnavailable(DomainError):
    """A backing service (or the server itself) cannot serve now; a retry may succeed."""

    detail = "A backing service is unavailable; retry later."


class HashingBusy(ServiceUnavailable):
    """More password checks wait than the hashing threads can serve soon: refused at once."""

    detail = "Too many password checks are waiting; retry shortly."


class InternalError(DomainError):
    detail = "An unexpected error occurred."


class MfaRequired(DomainError):
    """A second factor is needed: after a correct password (with the login's `mfa_token`),
    or on a route whose token lacks one."""

    detail = "A second factor is required."

    def __init__(
        self,
        detail: str | None = None,
        *,
        mfa_token: str | None = None,
        methods: tuple[str, ...] = (),
    ) -> None:
        super().__init__(detail)
        self.mfa_token = mfa_token
        self.methods = methods

    @property
    def token_lacks_factor(self) -> bool:
        """True when a token without a second factor was refused (not a password answered)."""
        return self.mfa_token is None

    def extra(self) -> dict[str, Any]:
        if self.mfa_token is None:
            return {}
        return {"mfa_token": self.mfa_token, "methods": list(self.methods)}


class MfaInvalid(DomainError):
    detail = "The code or mfa_token is wrong, used or expired."


class MfaEnrollmentRequired(DomainError):
    detail = "Your role needs a second factor: enrol one with POST /me/mfa/totp."


class MfaAlreadyEnrolled(DomainError):
    detail = "A second factor is already enrolled; turn it off first (DELETE /me/mfa/totp)."


class MfaKeyMissing(ServiceUnavailable):
    """Production without MFA_ENCRYPTION_KEY: secrets could not be stored encrypted."""

    detail = (
        "Two-factor enrolment is unavailable: the server has no MFA_ENCRYPTION_KEY; "
        "an operator must set one."
    )


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


class EmailUnverified(DomainError):
    detail = "Verify your email address first: follow the link in the message sent to it."


class LinkInvalid(DomainError):
    detail = "The link is invalid, used, expired or superseded; ask for a new one."
