"""Request and response bodies of account recovery and verification."""

from __future__ import annotations

from typing import Literal

from api.auth.schemas import Email, NewPassword, Password
from api.schemas import ResponseSchema, Schema


class LinkTokenRequest(Schema):
    """The token of a message's link (whatever its shape: a bad one is `link_invalid`)."""

    token: str


class ForgotPasswordRequest(Schema):
    email: Email


class ResetPasswordRequest(Schema):
    token: str
    new_password: NewPassword


class ChangeEmailRequest(Schema):
    new_email: Email
    password: Password


class AcceptedResponse(ResponseSchema):
    """The request was taken; a message follows (or, for an unknown address, does not)."""

    status: Literal["accepted"] = "accepted"
