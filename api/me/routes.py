"""HTTP routes of /me."""

from __future__ import annotations

from flask import Blueprint, Response

from api.edge.lanes import answer_on_loop
from api.me.lane import MeLane
from api.me.schemas import ChangePasswordRequest, DeleteAccountRequest, MeResponse
from api.openapi import STORE_ERRORS, documented
from api.resources import services
from api.schemas import no_content, respond
from api.security.guards import current_claims, fresh_required

bp = Blueprint("me", __name__, url_prefix="/me")

FRESH_ERRORS = (
    ("fresh_token_required", 401),
    ("invalid_credentials", 401),
    ("rate_limited", 429),
    *STORE_ERRORS,
)


@bp.get("")
@documented("The signed-in user", response=MeResponse, errors=STORE_ERRORS)
async def get_me() -> Response:
    profile = await services().account.profile(current_claims())
    return respond(MeResponse.model_validate(profile))


# Bearer-authenticated GET and HEAD, a mobile client's usual ones, are answered on the
# event loop by MeLane (same verifier, same statement, same bytes); the rest (a cookie
# token, no token) reach the view above.
answer_on_loop(bp, MeLane)


@bp.post("/password")
@fresh_required
@documented(
    "Change the password; every other session is signed out",
    status=204,
    body=ChangePasswordRequest,
    errors=FRESH_ERRORS,
)
async def change_password(data: ChangePasswordRequest) -> Response:
    await services().account.change_password(
        current_claims(), data.current_password, data.new_password
    )
    return no_content()


@bp.delete("")
@fresh_required
@documented(
    "Delete the account and revoke everything",
    status=204,
    body=DeleteAccountRequest,
    errors=[*FRESH_ERRORS, ("last_admin", 409)],
)
async def delete_me(data: DeleteAccountRequest) -> Response:
    await services().account.delete(current_claims(), data.password)
    return no_content()
