"""Request and response bodies of the second-factor routes."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from api.schemas import ResponseSchema, Schema, Storable

# Six digits as an app shows them; spaces are allowed ("123 456").
OneTimeCode = Annotated[
    str, StringConstraints(pattern=r"^\s*\d{3}\s?\d{3}\s*$", max_length=16), Storable
]
RecoveryCodeText = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]
MfaToken = Annotated[str, StringConstraints(min_length=1, max_length=256), Storable]


class CodeRequest(Schema):
    code: OneTimeCode


class _OneProof(Schema):
    """Exactly one of a one-time code and a recovery code."""

    code: OneTimeCode | None = None
    recovery_code: RecoveryCodeText | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send either `code` or `recovery_code`, not both or neither")
        return self


class DisableRequest(_OneProof):
    pass


class VerifyRequest(_OneProof):
    mfa_token: MfaToken
    # As the login said: the answer's tokens in the body, or in cookies.
    transport: Literal["bearer", "cookie"] = "bearer"


class EnrolmentResponse(ResponseSchema):
    secret: str
    otpauth_uri: str


class RecoveryCodesResponse(ResponseSchema):
    recovery_codes: Annotated[list[str], Field(min_length=10, max_length=10)]
