"""HTTP routes of /auth: parse, call the service, answer."""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask_jwt_extended import set_access_cookies, set_refresh_cookies

from api.auth import service
from api.auth.schemas import (
    CookieTokenResponse,
    LoginRequest,
    RegisterRequest,
    TokenResponse,
    UserResponse,
)
from api.openapi import documented
from api.runtime import runtime
from api.schemas import parse_body, respond
from api.security.guards import public

bp = Blueprint("auth", __name__, url_prefix="/auth")

USER_AGENT_MAX = 512


@bp.post("/register")
@public
@documented(
    "Create an account",
    status=201,
    body=RegisterRequest,
    response=UserResponse,
    errors=[("email_taken", 409), ("rate_limited", 429), ("service_unavailable", 503)],
    headers=["Location"],
)
async def register() -> Response:
    data = parse_body(RegisterRequest)
    rt = runtime()
    async with rt.unit_of_work() as uow:
        user = await service.register(uow, rt.passwords, rt.settings, data.email, data.password)
    return respond(UserResponse.model_validate(user), 201, headers={"Location": "/me"})


@bp.post("/login")
@public
@documented(
    "Log in on a device: opens a session and returns its tokens",
    body=LoginRequest,
    response=TokenResponse,
    errors=[
        ("invalid_credentials", 401),
        ("account_disabled", 403),
        ("rate_limited", 429),
        ("service_unavailable", 503),
    ],
)
async def login() -> Response:
    data = parse_body(LoginRequest)
    rt = runtime()
    device = service.Device(
        name=data.device_name,
        ip=request.remote_addr,
        user_agent=request.user_agent.string[:USER_AGENT_MAX] or None,
    )
    async with rt.unit_of_work() as uow:
        result = await service.login(
            uow, rt.passwords, rt.settings, data.email, data.password, device
        )
    tokens = result.tokens
    if data.transport == "cookie":
        response = respond(
            CookieTokenResponse(
                expires_in=tokens.expires_in,
                refresh_expires_in=tokens.refresh_expires_in,
                session_id=result.session_id,
            )
        )
        set_access_cookies(response, tokens.access_token)
        set_refresh_cookies(response, tokens.refresh_token)
        return response
    return respond(
        TokenResponse(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
            session_id=result.session_id,
        )
    )
