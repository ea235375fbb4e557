"""Request and response bodies of the /auth routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from api.schemas import ResponseSchema, Schema, Text
from db.sessions import LISTED_SESSIONS

Password = Annotated[Text, Field(min_length=1, max_length=1024)]


class RegisterRequest(Schema):
    email: EmailStr
    password: Password


class LoginRequest(Schema):
    email: EmailStr
    password: Password
    device_name: Annotated[Text, Field(max_length=100)] | None = None
    transport: Literal["bearer", "cookie"] = "bearer"


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


class CookieTokenResponse(ResponseSchema):
    """The login answer when the tokens travel in cookies instead of the body."""

    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name)
    expires_in: int
    refresh_expires_in: int
    session_id: str


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
