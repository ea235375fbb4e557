"""HTTP routes of the second factor: /me/mfa/* (the user's own) and POST /auth/mfa/verify."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from flask import Blueprint, Response

from api.auth.routes import token_response
from api.auth.schemas import IssuedResponse
from api.edge.metrics import second_factor_outcome
from api.edge.request_context import request_origin
from api.mfa.schemas import (
    CodeRequest,
    DisableRequest,
    EnrolmentResponse,
    RecoveryCodesResponse,
    VerifyRequest,
)
from api.mfa.service import Proof
from api.openapi import STORE_ERRORS, documented
from api.resources import resources, services
from api.schemas import no_content, respond
from api.security.guards import current_claims, fresh_required, public

bp = Blueprint("mfa", __name__)

AsyncView = Callable[..., Awaitable[Response]]

CODE_ERRORS = (("mfa_invalid", 401), ("rate_limited", 429), *STORE_ERRORS)
FRESH = (("fresh_token_required", 401),)


def _counted(action: str) -> Callable[[AsyncView], AsyncView]:
    """Count the route's requests by outcome in auth_api_mfa_total."""

    def decorate(view: AsyncView) -> AsyncView:
        @functools.wraps(view)
        async def observed(*args: Any, **kwargs: Any) -> Response:
            with second_factor_outcome(action):
                return await view(*args, **kwargs)

        return observed

    return decorate


@bp.post("/me/mfa/totp")
@fresh_required
@_counted("enrol")
@documented(
    "Start TOTP enrolment: a new secret and its otpauth:// URI (nothing changes at login "
    "until confirmed)",
    response=EnrolmentResponse,
    errors=[*FRESH, ("mfa_already_enrolled", 409), *STORE_ERRORS],
)
async def enrol() -> Response:
    enrolment = await services().mfa.enrol(current_claims())
    return respond(EnrolmentResponse(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri))


@bp.post("/me/mfa/totp/confirm")
@_counted("confirm")
@documented(
    "Confirm enrolment with a code from the app; answers the 10 recovery codes, once",
    body=CodeRequest,
    response=RecoveryCodesResponse,
    errors=[*CODE_ERRORS, ("mfa_already_enrolled", 409)],
)
async def confirm(data: CodeRequest) -> Response:
    recovery_codes = await services().mfa.confirm(current_claims(), data.code)
    return respond(RecoveryCodesResponse(recovery_codes=recovery_codes))


@bp.delete("/me/mfa/totp")
@fresh_required
@_counted("disable")
@documented(
    "Turn the second factor off, proven with a code or a recovery code",
    status=204,
    body=DisableRequest,
    errors=[*FRESH, *CODE_ERRORS, ("not_found", 404)],
)
async def disable(data: DisableRequest) -> Response:
    proof = Proof(code=data.code, recovery_code=data.recovery_code)
    await services().mfa.disable(current_claims(), proof)
    return no_content()


@bp.post("/me/mfa/recovery-codes")
@fresh_required
@_counted("recovery_codes")
@documented(
    "Replace the recovery codes (proven with a code); the old set stops working",
    body=CodeRequest,
    response=RecoveryCodesResponse,
    errors=[*FRESH, *CODE_ERRORS, ("not_found", 404)],
)
async def replace_recovery_codes(data: CodeRequest) -> Response:
    recovery_codes = await services().mfa.replace_recovery_codes(current_claims(), data.code)
    return respond(RecoveryCodesResponse(recovery_codes=recovery_codes))


@bp.post("/auth/mfa/verify")
@public
@_counted("verify")
@documented(
    "Finish a login that answered mfa_required: the mfa_token and a code (or a recovery "
    "code); answers the login body",
    body=VerifyRequest,
    response=IssuedResponse,
    errors=[*CODE_ERRORS, ("account_disabled", 403)],
)
async def verify(data: VerifyRequest) -> Response:
    origin = request_origin()
    ip_key = origin.client.limit_key(resources().settings.ipv6_rate_limit_prefix)
    # The login's per-IP limit: an mfa_token is guessed no faster than a password.
    async with services().auth.login_attempt(ip_key):
        proof = Proof(code=data.code, recovery_code=data.recovery_code)
        login = await services().mfa.verify(data.mfa_token, proof, origin.user_agent)
    return token_response(login.tokens, login.session_id, cookies=data.transport == "cookie")
