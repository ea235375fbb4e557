"""HTTP routes of /me."""

from __future__ import annotations

from flask import Blueprint, Response

from api.auth.schemas import UserResponse
from api.me import service
from api.openapi import documented
from api.runtime import runtime
from api.schemas import respond
from api.security.guards import current_claims

bp = Blueprint("me", __name__, url_prefix="/me")


@bp.get("")
@documented(
    "The signed-in user",
    response=UserResponse,
    errors=[("service_unavailable", 503)],
)
async def get_me() -> Response:
    async with runtime().unit_of_work() as uow:
        user = await service.get_me(uow, current_claims())
    return respond(UserResponse.model_validate(user))
