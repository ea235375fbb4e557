"""HTTP routes of /auth: parse, call the service, answer."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from flask import Blueprint, Response, request
from flask_jwt_extended import set_access_cookies, set_refresh_cookies, unset_jwt_cookies

from api.auth.login_lane import LoginLane
from api.auth.login_shed_lane import LoginShedLane
from api.auth.schemas import (
    CookieTokenResponse,
    IssuedResponse,
    LoginRequest,
    LoginResponse,
    LoginTokenResponse,
    RefreshRequest,
    RegisterRequest,
    SessionResponse,
    SessionsResponse,
    TokenResponse,
    UserResponse,
)
from api.auth.service import AuthService, Device
from api.auth.verify_lane import METHODS as VERIFY_METHODS
from api.auth.verify_lane import PATH as VERIFY_PATH
from api.auth.verify_lane import RULES as VERIFY_RULES
from api.auth.verify_lane import VerifyLane
from api.domain.errors import TokenMissing
from api.edge.cors import for_gateways
from api.edge.lanes import answer_on_loop
from api.edge.metrics import login_outcome
from api.edge.request_context import request_origin
from api.openapi import REFRESH_SECURITY, STORE_ERRORS, TOKEN_ERRORS, documented
from api.resources import resources, services
from api.schemas import no_content, parse_body, path_id, respond
from api.security.client_address import ClientAddress
from api.security.device_tokens import DEVICE_COOKIE, IssuedDeviceToken
from api.security.guards import current_claims, public, token_came_from_cookie
from api.security.tokens import IssuedTokens
from api.security.transport import PresentedToken, bearer_token, presented_token
from db.sessions import LISTED_SESSIONS

bp = Blueprint("auth", __name__, url_prefix="/auth")

AsyncView = Callable[..., Awaitable[Response]]


def _limited_per_ip(
    attempt: Callable[[AuthService, str], AbstractAsyncContextManager[None]],
) -> Callable[[AsyncView], AsyncView]:
    """Hold the request within its client IP's limit, from before its body is even parsed."""

    def decorate(view: AsyncView) -> AsyncView:
        @functools.wraps(view)
        async def limited(*args: Any, **kwargs: Any) -> Response:
            async with attempt(services().auth, _ip_limit_key()):
                return await view(*args, **kwargs)

        return limited

    return decorate


def _login_outcome(view: AsyncView) -> AsyncView:
    """Count every login attempt by outcome, refusals before the body included."""

    @functools.wraps(view)
    async def observed(*args: Any, **kwargs: Any) -> Response:
        with login_outcome():
            return await view(*args, **kwargs)

    return observed


@bp.post("/register")
@public
@_limited_per_ip(AuthService.registration_attempt)
@documented(
    "Create an account",
    status=201,
    body=RegisterRequest,
    response=UserResponse,
    errors=[("email_taken", 409), ("rate_limited", 429), ("service_unavailable", 503)],
    headers=["Location"],
)
async def register(data: RegisterRequest) -> Response:
    user = await services().auth.register(data.email, data.password)
    return respond(UserResponse.model_validate(user), 201, headers={"Location": "/me"})


@bp.post("/login")
@public
@_login_outcome
@_limited_per_ip(AuthService.login_attempt)
@documented(
    "Log in on a device: opens a session and returns its tokens",
    body=LoginRequest,
    response=LoginResponse,
    errors=[
        ("invalid_credentials", 401),
        ("mfa_required", 401),
        ("account_disabled", 403),
        ("email_unverified", 403),
        ("rate_limited", 429),
        ("service_unavailable", 503),
    ],
    cookies=[(DEVICE_COOKIE, "The device token a cookie login set on this device (see body).")],
)
async def login(data: LoginRequest) -> Response:
    device = Device(name=data.device_name, ip=_client().stored, user_agent=_user_agent())
    cookies = data.transport == "cookie"
    # The body's member first: a bearer client on a browser may carry the cookie too.
    presented = data.device_token or request.cookies.get(DEVICE_COOKIE)
    result = await services().auth.login(
        data.email,
        data.password,
        device,
        remember=data.remember and cookies,
        device_token=presented,
    )
    return token_response(
        result.tokens, result.session_id, cookies=cookies, device_token=result.device_token
    )


@bp.post("/refresh")
@public
@documented(
    "Exchange a refresh token (Authorization header, JSON body, or cookie with CSRF echo) "
    "for a new pair; the old one is superseded",
    body=RefreshRequest,
    body_required=False,
    security=REFRESH_SECURITY,
    response=IssuedResponse,
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
    claims = await resources().verifier.refresh_claims(presented.token)
    presented.check_csrf(claims.csrf)
    tokens = await services().auth.refresh(claims)
    return token_response(tokens, claims.session_id, cookies=presented.from_cookie)


def _refresh_token() -> PresentedToken:
    """The refresh token: Authorization header, JSON body (OAuth 2.0 style), or cookie."""
    if bearer_token(request.headers.get("Authorization")) is None and request.content_length:
        token = parse_body(RefreshRequest).refresh_token
        if token is not None:
            return PresentedToken(token)
    presented = presented_token(request, refresh=True)
    if presented is None:
        raise TokenMissing()
    return presented


@bp.post("/logout")
@documented("Log out this device: revoke the current session", status=204, errors=STORE_ERRORS)
async def logout() -> Response:
    await services().sessions.logout(current_claims())
    return _signed_out()


@bp.post("/logout-all")
@documented("Log out everywhere: revoke every session of the user", status=204, errors=STORE_ERRORS)
async def logout_all() -> Response:
    await services().sessions.logout_all(current_claims())
    return _signed_out()


@bp.get("/sessions")
@documented(
    f"The user's newest {LISTED_SESSIONS} active sessions, newest first",
    response=SessionsResponse,
    errors=STORE_ERRORS,
)
async def list_sessions() -> Response:
    sessions = await services().sessions.active(current_claims())
    listed = [SessionResponse.model_validate(session) for session in sessions]
    return respond(SessionsResponse(sessions=listed))


@bp.delete("/sessions/<session_id>")
@documented(
    "Revoke one of the user's sessions (sign a lost device out)",
    status=204,
    errors=[("not_found", 404), *STORE_ERRORS],
)
async def delete_session(session_id: str) -> Response:
    await services().sessions.revoke(current_claims(), path_id(session_id, "active session"))
    return no_content()


@documented(
    "Forward-auth check for a gateway: token only, one Redis round trip, no Postgres. "
    "Any method and any path below /auth/verify/ get the same answer; a body is ignored",
    status=204,
    errors=STORE_ERRORS,
    headers=["X-Auth-User", "X-Auth-Session", "X-Auth-Role", "X-Auth-Permissions"],
)
async def verify(forwarded_path: str = "") -> Response:
    response = no_content()
    response.headers.update(current_claims().identity_headers())
    return response


# Envoy's ext_authz HTTP service forwards the original method and appends the original
# path to its prefix, so every method of every path below it gets the same answer (and
# no CORS preflight). Bearer-authenticated requests, a gateway's usual ones, are answered
# on the event loop by VerifyLane, with the same verifier; the rest (a cookie token, no
# token) reach this view.
answer_on_loop(bp, VerifyLane)
# A login the hashing would refuse is refused before the login lane parses its body.
answer_on_loop(bp, LoginShedLane)
answer_on_loop(bp, LoginLane)
for_gateways(bp, VERIFY_PATH)
for _rule, _endpoint in zip(VERIFY_RULES, ("verify", "verify_prefix", "verify_below"), strict=True):
    bp.add_url_rule(
        _rule.removeprefix(bp.url_prefix or ""),
        _endpoint,
        verify,
        methods=VERIFY_METHODS,
        provide_automatic_options=False,
    )


def _client() -> ClientAddress:
    # Worked out once per request (an unusable forwarded entry is logged once), and the
    # same the audit trail records.
    return request_origin().client


def _ip_limit_key() -> str:
    return _client().limit_key(resources().settings.ipv6_rate_limit_prefix)


def _user_agent() -> str | None:
    return request_origin().user_agent


def _signed_out() -> Response:
    response = no_content()
    if token_came_from_cookie():
        unset_jwt_cookies(response)
    return response


def token_response(
    tokens: IssuedTokens,
    session_id: str,
    *,
    cookies: bool,
    device_token: IssuedDeviceToken | None = None,
) -> Response:
    """The login/refresh answer: tokens in the body, or in cookies for browser clients; a
    login's device token with them (a body member, or a cookie)."""
    if not cookies:
        if device_token is None:
            return respond(TokenResponse.issued(tokens, session_id))
        return respond(
            LoginTokenResponse.issued(tokens, session_id, device_token=device_token.token)
        )
    response = respond(
        CookieTokenResponse(
            expires_in=tokens.expires_in,
            refresh_expires_in=tokens.refresh_expires_in,
            session_id=session_id,
        )
    )
    # Session cookies (gone when the browser closes) unless the login asked to be remembered.
    remembered = tokens.remember
    set_access_cookies(response, tokens.access_token, tokens.expires_in if remembered else None)
    set_refresh_cookies(
        response, tokens.refresh_token, tokens.refresh_expires_in if remembered else None
    )
    if device_token is not None:
        # Persistent whatever `remember` says: it names the device, not a session, and holds
        # no access. Path=/ like the session cookies, so a gateway's path prefix can't hide it.
        response.set_cookie(
            DEVICE_COOKIE,
            device_token.token,
            max_age=device_token.max_age,
            path="/",
            secure=resources().settings.cookie_secure,
            httponly=True,
            samesite="Strict",
        )
    return response
