"""HTTP routes of /admin: parse, call the admin service, answer."""

from __future__ import annotations

from flask import Blueprint, Response

from api.admin.schemas import (
    AdminUserResponse,
    AuditEventListResponse,
    AuditEventQuery,
    AuditEventResponse,
    UserListQuery,
    UserListResponse,
    UserUpdate,
)
from api.admin.service import AccessChange
from api.openapi import STORE_ERRORS, documented
from api.resources import services
from api.schemas import no_content, path_id, respond
from api.security.guards import current_claims, permission_required
from api.security.permissions import AUDIT_READ, USERS_READ, USERS_WRITE
from db.audit import EventFilter

bp = Blueprint("admin", __name__, url_prefix="/admin")

NOT_FOUND = (("not_found", 404), *STORE_ERRORS)


@bp.get("/users")
@permission_required(USERS_READ)
@documented(
    "Users, newest first, keyset-paginated; `email` filters by a prefix of the normalised address",
    query=UserListQuery,
    response=UserListResponse,
    errors=STORE_ERRORS,
)
async def list_users(query: UserListQuery) -> Response:
    page = await services().admin.users(query.email, query.cursor, query.limit)
    users = [AdminUserResponse.model_validate(user) for user in page.items]
    return respond(UserListResponse(users=users, next_cursor=page.next_cursor))


@bp.get("/users/<user_id>")
@permission_required(USERS_READ)
@documented("One user", response=AdminUserResponse, errors=NOT_FOUND)
async def get_user(user_id: str) -> Response:
    user = await services().admin.user(path_id(user_id, "user"))
    return respond(AdminUserResponse.model_validate(user))


@bp.patch("/users/<user_id>")
@permission_required(USERS_WRITE)
@documented(
    "Change a user's role or disable them; either revokes every session and token of the "
    "user at once",
    body=UserUpdate,
    response=AdminUserResponse,
    errors=[*NOT_FOUND, ("last_admin", 409)],
)
async def update_user(data: UserUpdate, user_id: str) -> Response:
    change = AccessChange(role=data.role, disabled=data.disabled)
    user = await services().admin.update(current_claims(), path_id(user_id, "user"), change)
    return respond(AdminUserResponse.model_validate(user))


@bp.delete("/users/<user_id>/sessions")
@permission_required(USERS_WRITE)
@documented("Sign a user out everywhere", status=204, errors=NOT_FOUND)
async def sign_out_user(user_id: str) -> Response:
    await services().admin.sign_out(current_claims(), path_id(user_id, "user"))
    return no_content()


@bp.delete("/users/<user_id>/mfa")
@permission_required(USERS_WRITE)
@documented(
    "Remove a user's second factor (lost phone) and sign them out everywhere",
    status=204,
    errors=[*NOT_FOUND, ("forbidden", 403)],
)
async def reset_user_mfa(user_id: str) -> Response:
    await services().mfa.reset(current_claims(), path_id(user_id, "user"))
    return no_content()


@bp.get("/audit-events")
@permission_required(AUDIT_READ)
@documented(
    "Audit events, newest first, keyset-paginated; filtered by user, type and time",
    query=AuditEventQuery,
    response=AuditEventListResponse,
    errors=STORE_ERRORS,
)
async def list_audit_events(query: AuditEventQuery) -> Response:
    where = EventFilter(query.user_id, query.type, query.since, query.until)
    page = await services().admin.events(where, query.cursor, query.limit)
    events = [AuditEventResponse.model_validate(event) for event in page.items]
    return respond(AuditEventListResponse(events=events, next_cursor=page.next_cursor))
