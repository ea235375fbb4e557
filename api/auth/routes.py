"""HTTP routes of /auth: parse, call the service, answer."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, request
from flask_jwt_extended import set_access_cookies, set_refresh_cookies, unset_jwt_cookies

from api.auth import revocation, rotation, service
from api.auth.schemas import (
    CookieTokenResponse,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    SessionResponse,
    SessionsResponse,
    TokenResponse,
    UserResponse,
)
from api.errors import TokenMissing
from api.metrics import login_outcome
from api.openapi import REFRESH_SECURITY, STORE_ERRORS, TOKEN_ERRORS, documented
from api.runtime import runtime
from api.schemas import no_content, parse_body, respond
from api.security.client_address import ClientAddress, client_address
from api.security.guards import current_claims, public, token_came_from_cookie
from api.security.tokens import IssuedTokens
from api.security.transport import PresentedToken, bearer_token, presented_token
from api.verify_lane import METHODS as VERIFY_METHODS
from api.verify_lane import RULES as VERIFY_RULES
from db.sessions import LISTED_SESSIONS

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
    rt = runtime()
    async with rt.rate_limits.registration(_ip_limit_key(client_address(request.environ))):
        data = parse_body(RegisterRequest)
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
    rt = runtime()
    client = client_address(request.environ)
    with login_outcome():
        # Counted before the body is even parsed: malformed floods count too.
        await rt.rate_limits.count_login(_ip_limit_key(client))
        data = parse_body(LoginRequest)
        device = service.Device(name=data.device_name, ip=client.stored, user_agent=_user_agent())
        async with rt.unit_of_work() as uow:
            result = await service.login(
                uow, rt.passwords, rt.rate_limits, rt.settings, data.email, data.password, device
            )
    return token_response(result.tokens, result.session_id, cookies=data.transport == "cookie")


@bp.post("/refresh")
@public
@documented(
    "Exchange a refresh token (Authorization header, JSON body, or cookie with CSRF echo) "
    "for a new pair; the old one is superseded",
    body=RefreshRequest,
    body_required=False,
    security=REFRESH_SECURITY,
    response=TokenResponse,
    errors=[
        *TOKEN_ERRORS,
        ("refresh_token_reused", 401),
        ("account_disabled", 403),
        ("forbidden", 403),
        ("service_unavailable", 503),
    ],
)
async def refresh() -> Response:
    presented = _refresh_token()
    rt = runtime()
    claims = await rt.verifier.refresh_claims(presented.token)
    presented.check_csrf(claims.csrf)
    async with rt.unit_of_work() as uow:
        tokens = await rotation.refresh(uow, rt.revocations, rt.settings, claims)
    return token_response(tokens, claims.session_id, cookies=presented.from_cookie)


def _refresh_token() -> PresentedToken:
    """The refresh token: Authorization header, JSON body (OAuth 2.0 style), or cookie."""
    if bearer_token(request.headers.get("Authorization")) is None and request.content_length:
        return PresentedToken(parse_body(RefreshRequest).refresh_token)
    presented = presented_token(request, refresh=True)
    if presented is None:
        raise TokenMissing()
    return presented


@bp.post("/logout")
@documented("Log out this device: revoke the current session", status=204, errors=STORE_ERRORS)
async def logout() -> Response:
    rt = runtime()
    async with rt.unit_of_work() as uow:
        await revocation.logout(uow, rt.revocations, current_claims())
    return _signed_out()


@bp.post("/logout-all")
@documented("Log out everywhere: revoke every session of the user", status=204, errors=STORE_ERRORS)
async def logout_all() -> Response:
    rt = runtime()
    async with rt.unit_of_work() as uow:
        await revocation.logout_all(uow, rt.revocations, rt.settings, current_claims().user_id)
    return _signed_out()


@bp.get("/sessions")
@documented(
    f"The user's newest {LISTED_SESSIONS} active sessions, newest first",
    response=SessionsResponse,
    errors=STORE_ERRORS,
)
async def list_sessions() -> Response:
    claims = current_claims()
    async with runtime().unit_of_work() as uow:
        sessions = await revocation.active_sessions(uow, claims.user_id)
    current = uuid.UUID(claims.session_id)
    body = SessionsResponse(
        sessions=[
            SessionResponse(
                id=s.id,
                device_name=s.device_name,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                ip=s.ip,
                user_agent=s.user_agent,
                current=s.id == current,
            )
            for s in sessions
        ]
    )
    return respond(body)


@bp.delete("/sessions/<session_id>")
@documented(
    "Revoke one of the user's sessions (sign a lost device out)",
    status=204,
    errors=[("not_found", 404), *STORE_ERRORS],
)
async def delete_session(session_id: str) -> Response:
    rt = runtime()
    async with rt.unit_of_work() as uow:
        await revocation.revoke_session(uow, rt.revocations, current_claims().user_id, session_id)
    return no_content()


@documented(
    "Forward-auth check for a gateway: token only, one Redis round trip, no Postgres. "
    "Any method and any path below /auth/verify/ get the same answer; a body is ignored",
    status=204,
    errors=STORE_ERRORS,
    headers=["X-Auth-User", "X-Auth-Session", "X-Auth-Role"],
)
async def verify(forwarded_path: str = "") -> Response:
    response = no_content()
    response.headers.update(current_claims().identity_headers())
    return response


# Envoy's ext_authz HTTP service forwards the original method and appends the original
# path to its prefix; without a bearer token (the lane takes those) Flask answers here.
for _rule, _endpoint in zip(VERIFY_RULES, ("verify", "verify_prefix", "verify_below"), strict=True):
    bp.add_url_rule(
        _rule.removeprefix(bp.url_prefix or ""),
        _endpoint,
        verify,
        methods=VERIFY_METHODS,
        provide_automatic_options=False,
    )


def _ip_limit_key(client: ClientAddress) -> str:
    return client.limit_key(runtime().settings.ipv6_rate_limit_prefix)


def _user_agent() -> str | None:
    # Fits its column, and holds no control characters (Postgres text refuses NUL).
    printable = "".join(c for c in request.user_agent.string if c.isprintable())
    return printable[:USER_AGENT_MAX] or None


def _signed_out() -> Response:
    response = no_content()
    if token_came_from_cookie():
        unset_jwt_cookies(response)
    return response


def token_response(tokens: IssuedTokens, session_id: str, *, cookies: bool) -> Response:
    """The login/refresh answer: tokens in the body, or in cookies for browser clients."""
    if not cookies:
        return respond(
            TokenResponse(
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_in=tokens.expires_in,
                refresh_expires_in=tokens.refresh_expires_in,
                session_id=session_id,
            )
        )
    response = respond(
        CookieTokenResponse(
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
            session_id=session_id,
        )
    )
    set_access_cookies(response, tokens.access_token)
    set_refresh_cookies(response, tokens.refresh_token)
    return response
