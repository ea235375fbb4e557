"""Request bodies of the /me routes."""

from __future__ import annotations

from api.auth.schemas import NewPassword, Password, UserResponse
from api.schemas import Schema


class MeResponse(UserResponse):
    email_verified: bool


class ChangePasswordRequest(Schema):
    current_password: Password
    new_password: NewPassword


class DeleteAccountRequest(Schema):
    password: Password
