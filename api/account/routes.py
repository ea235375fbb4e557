"""HTTP routes of account recovery and verification: parse, call the service, answer."""

from __future__ import annotations

from flask import Blueprint, Response

from api.account.schemas import (
    AcceptedResponse,
    ChangeEmailRequest,
    ForgotPasswordRequest,
    LinkTokenRequest,
    ResetPasswordRequest,
)
from api.edge.request_context import request_origin
from api.openapi import STORE_ERRORS, documented
from api.resources import resources, services
from api.schemas import no_content, respond
from api.security.guards import current_claims, fresh_required, public

bp = Blueprint("account", __name__)

LINK_ERRORS = (("link_invalid", 400), *STORE_ERRORS)


def _accepted() -> Response:
    return respond(AcceptedResponse(), 202)


@bp.post("/auth/email/verify-request")
@documented(
    "Send a new verification message to the account's address (none if already verified)",
    status=202,
    response=AcceptedResponse,
    errors=[("rate_limited", 429), *STORE_ERRORS],
)
async def request_verification() -> Response:
    await services().recovery.request_verification(current_claims())
    return _accepted()


@bp.post("/auth/email/verify")
@public
@documented(
    "Mark the address verified with the token of a verification message",
    status=204,
    body=LinkTokenRequest,
    errors=LINK_ERRORS,
)
async def verify_email(data: LinkTokenRequest) -> Response:
    await services().recovery.verify_email(data.token)
    return no_content()


@bp.post("/auth/password/forgot")
@public
@documented(
    "Send a password-reset message if an account has this address; the same answer, in the "
    "same time, either way",
    status=202,
    body=ForgotPasswordRequest,
    response=AcceptedResponse,
    errors=[("rate_limited", 429), *STORE_ERRORS],
)
async def forgot_password(data: ForgotPasswordRequest) -> Response:
    ip = request_origin().client.limit_key(resources().settings.ipv6_rate_limit_prefix)
    await services().recovery.forgot_password(data.email, ip)
    return _accepted()


@bp.post("/auth/password/reset")
@public
@documented(
    "Set a new password with the token of a reset message; every session and token of the "
    "user is revoked, and the address counts as verified",
    status=204,
    body=ResetPasswordRequest,
    errors=LINK_ERRORS,
)
async def reset_password(data: ResetPasswordRequest) -> Response:
    await services().recovery.reset_password(data.token, data.new_password)
    return no_content()


@bp.post("/me/email")
@fresh_required
@documented(
    "Change the address: a confirmation goes to the new one and a notice to the old one",
    status=202,
    body=ChangeEmailRequest,
    response=AcceptedResponse,
    errors=[
        ("fresh_token_required", 401),
        ("invalid_credentials", 401),
        ("email_taken", 409),
        ("rate_limited", 429),
        *STORE_ERRORS,
    ],
)
async def change_email(data: ChangeEmailRequest) -> Response:
    await services().recovery.request_email_change(current_claims(), data.new_email, data.password)
    return _accepted()


@bp.post("/auth/email/confirm-change")
@public
@documented(
    "Switch the account to the new address with the token of a confirmation message",
    status=204,
    body=LinkTokenRequest,
    errors=[*LINK_ERRORS, ("email_taken", 409)],
)
async def confirm_email_change(data: LinkTokenRequest) -> Response:
    await services().recovery.confirm_email_change(data.token)
    return no_content()
