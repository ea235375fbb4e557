"""Request bodies of the /me routes."""

from __future__ import annotations

from api.auth.schemas import NewPassword, Password, UserResponse
from api.schemas import Schema


class ChangePasswordRequest(Schema):
    current_password: Password
    new_password: NewPassword


class DeleteAccountRequest(Schema):
    password: Password


class MeResponse(UserResponse):
    """The signed-in user, with whether their address is proven and whether their login
    asks for a second factor."""

    email_verified: bool
    mfa_enabled: bool
