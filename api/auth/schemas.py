"""Request and response bodies of the /auth routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import EmailStr, Field, RootModel, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from api.schemas import (
    NEW_PASSWORD_MARK,
    NotNull,
    Printable,
    ResponseSchema,
    Schema,
    Storable,
    Trimmed,
)
from api.security.device_tokens import DEVICE_COOKIE, MAX_DEVICE_TOKEN_LENGTH
from api.security.passwords import MAX_PASSWORD_LENGTH
from api.security.tokens import IssuedTokens
from db.sessions import LISTED_SESSIONS

Email = Annotated[EmailStr, Trimmed]
# Taken exactly as sent: never trimmed (NIST SP 800-63B).
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH), Storable]
# A password being set; the service checks PASSWORD_MIN_LENGTH and the other rules.
NewPassword = Annotated[Password, Field(json_schema_extra={NEW_PASSWORD_MARK: True})]


class RegisterRequest(Schema):
    email: Email
    password: NewPassword


class LoginRequest(Schema):
    email: Email
    password: Password
    device_name: (
        Annotated[str, StringConstraints(max_length=100), Storable, Printable, Trimmed] | None
    ) = None
    transport: Literal["bearer", "cookie"] = "bearer"
    # Cookie transport: keep the cookies across browser restarts, for the tokens' lifetimes.
    remember: bool = False
    device_token: Annotated[
        str | None,
        Field(
            max_length=MAX_DEVICE_TOKEN_LENGTH,
            description="The device token an earlier login on this device returned (cookie "
            f"clients send the `{DEVICE_COOKIE}` cookie instead): this device's failed "
            "logins then count against its own budget, not the account's. One that is not "
            "valid for this account counts as none.",
        ),
    ] = None


class RefreshRequest(Schema):
    """A refresh token in the body, the way OAuth 2.0 clients send it; a body without one
    (`{}`) leaves the cookie to present it."""

    refresh_token: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=8 * 1024), Storable]
        | SkipJsonSchema[None],
        NotNull,
    ] = None


class UserResponse(ResponseSchema):
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime


class TokenResponse(ResponseSchema):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name)
    expires_in: int
    refresh_expires_in: int
    session_id: str

    @classmethod
    def issued(cls, tokens: IssuedTokens, session_id: str, **extra: str) -> Self:
        """The answer carrying `tokens` of session `session_id` (and `extra` members)."""
        return cls(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
            session_id=session_id,
            **extra,
        )


class LoginTokenResponse(TokenResponse):
    device_token: Annotated[
        str,
        Field(
            description="Send it back as `device_token` in this device's later logins: its "
            "failed logins then count against its own budget, so guesses from elsewhere "
            "never lock it out. A new one comes with every login; keep the newest."
        ),
    ]


class CookieTokenResponse(ResponseSchema):
    """The login answer when the tokens travel in cookies instead of the body."""

    token_type: Literal["cookie"] = "cookie"  # noqa: S105 (how the tokens travel)
    expires_in: int
    refresh_expires_in: int
    session_id: str


class IssuedResponse(RootModel[TokenResponse | CookieTokenResponse]):
    """What refresh answers: the tokens in the body, or (cookie transport) in cookies."""


class LoginResponse(RootModel[LoginTokenResponse | CookieTokenResponse]):
    """What login answers: the tokens and the device token in the body, or (cookie
    transport) in cookies."""


class SessionResponse(ResponseSchema):
    id: uuid.UUID
    device_name: str | None
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class SessionsResponse(ResponseSchema):
    sessions: Annotated[list[SessionResponse], Field(max_length=LISTED_SESSIONS)]
