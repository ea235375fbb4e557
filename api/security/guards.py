"""Default deny: every view needs a valid, unrevoked access token unless marked public.

`protect_views` wraps every view of the app after the blueprints are registered,
so a route added later can't be left open by forgetting a decorator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from flask import Flask, g, request

from api.domain.errors import Forbidden, MfaEnrollmentRequired, MfaRequired
from api.resources import resources
from api.security.claims import AccessClaims
from api.security.transport import PresentedToken, required_token

View = TypeVar("View", bound=Callable[..., Any])

_PUBLIC = "_auth_public"
_FRESH = "_auth_fresh"
_ROLES = "_auth_roles"
_PERMISSIONS = "_auth_permissions"
_GUARDED = "_auth_guarded"
_SECOND_FACTOR = "_auth_second_factor"


def public(view: View) -> View:
    """Mark a view as reachable without a token."""
    setattr(view, _PUBLIC, True)
    return view


def fresh_required(view: View) -> View:
    """Require an access token issued by a password login, not by refresh."""
    setattr(view, _FRESH, True)
    return view


def mfa_required(view: View) -> View:
    """Require a token whose login proved a second factor (step-up): `401 mfa_required`,
    or `403 mfa_enrollment_required` when the user has none. Composes with the others."""
    setattr(view, _SECOND_FACTOR, True)
    return view


def role_required(*roles: str) -> Callable[[View], View]:
    """Require the token's role to be one of `roles` (403 forbidden otherwise)."""

    def mark(view: View) -> View:
        setattr(view, _ROLES, frozenset(roles))
        return view

    return mark


def permission_required(*permissions: str) -> Callable[[View], View]:
    """Require the token to carry every one of `permissions` (403 forbidden otherwise)."""

    def mark(view: View) -> View:
        setattr(view, _PERMISSIONS, frozenset(getattr(view, _PERMISSIONS, ())) | set(permissions))
        return view

    return mark


def required_permissions(view: Callable[..., Any]) -> list[str]:
    """The permissions a view requires, sorted (for the OpenAPI document)."""
    return sorted(getattr(view, _PERMISSIONS, ()))


def is_public(view: Callable[..., Any]) -> bool:
    return bool(getattr(view, _PUBLIC, False))


def is_guarded(view: Callable[..., Any]) -> bool:
    return bool(getattr(view, _GUARDED, False))


def protect_views(app: Flask) -> None:
    """Wrap every non-public view of `app` with the access-token guard.

    Raises:
        TypeError: a protected view is not `async def` (the guard awaits Redis).
    """
    for endpoint, view in list(app.view_functions.items()):
        if is_public(view) or is_guarded(view):
            continue
        if not inspect.iscoroutinefunction(view):
            raise TypeError(f"View {endpoint!r} needs a token, so it must be `async def`.")
        app.view_functions[endpoint] = _guard(view)


def _guard(view: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    fresh = bool(getattr(view, _FRESH, False))
    roles: frozenset[str] | None = getattr(view, _ROLES, None)
    permissions: frozenset[str] = getattr(view, _PERMISSIONS, frozenset())
    second_factor = bool(getattr(view, _SECOND_FACTOR, False))

    @functools.wraps(view)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        claims = await authenticate(fresh=fresh)
        if roles is not None and claims.role not in roles:
            raise Forbidden()
        if not permissions.issubset(claims.permissions):
            raise Forbidden("The token lacks a permission this route requires.")
        # MFA_REQUIRED_ROLES: their holders use their permissions only with a second factor.
        if second_factor or (
            permissions and claims.role in resources().settings.mfa_required_roles
        ):
            await _require_second_factor(claims)
        return await view(*args, **kwargs)

    setattr(guarded, _GUARDED, True)
    return guarded


async def _require_second_factor(claims: AccessClaims) -> None:
    # The token answers for itself; Postgres is asked only to word the refusal.
    if claims.has_second_factor:
        return
    if await resources().services.mfa.is_enrolled(claims.user_id):
        raise MfaRequired("This route needs a login with a second factor; log in again.")
    raise MfaEnrollmentRequired()


async def authenticate(*, fresh: bool = False) -> AccessClaims:
    """Verify the request's access token (header or cookie) with the worker's one verifier.

    Raises:
        TokenMissing, TokenInvalid, TokenExpired, TokenRevoked, FreshTokenRequired.
        Forbidden: a state-changing cookie request without the CSRF echo.
        StoreUnavailable: Redis did not answer (fail closed).
    """
    presented = required_token(request)
    claims = await resources().verifier.authenticate(presented.token, fresh=fresh)
    presented.check_csrf(claims.csrf)
    g.claims = claims
    g.presented = presented
    return claims


def current_claims() -> AccessClaims:
    """The verified claims of the current request's access token."""
    claims: AccessClaims = g.claims
    return claims


def token_came_from_cookie() -> bool:
    """Whether the verified token of this request travelled in a cookie."""
    presented: PresentedToken | None = g.get("presented")
    return presented is not None and presented.from_cookie
