"""Default deny: every view needs a valid, unrevoked access token unless marked public.

`protect_views` wraps every view of the app after the blueprints are registered,
so a route added later can't be left open by forgetting a decorator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from flask import Flask, g

from api.errors import Forbidden, TokenRevoked
from api.runtime import runtime
from api.security.tokens import AccessClaims, read_access_token

View = TypeVar("View", bound=Callable[..., Any])

_PUBLIC = "_auth_public"
_FRESH = "_auth_fresh"
_ROLES = "_auth_roles"
_GUARDED = "_auth_guarded"


def public(view: View) -> View:
    """Mark a view as reachable without a token."""
    setattr(view, _PUBLIC, True)
    return view


def fresh_required(view: View) -> View:
    """Require an access token issued by a password login, not by refresh."""
    setattr(view, _FRESH, True)
    return view


def roles_required(*roles: str) -> Callable[[View], View]:
    """Require the token's role to be one of `roles`."""

    def mark(view: View) -> View:
        setattr(view, _ROLES, frozenset(roles))
        return view

    return mark


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

    @functools.wraps(view)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        claims = await authenticate(fresh=fresh)
        if roles is not None and claims.role not in roles:
            raise Forbidden()
        return await view(*args, **kwargs)

    setattr(guarded, _GUARDED, True)
    return guarded


async def authenticate(*, fresh: bool = False) -> AccessClaims:
    """Verify the access token, then ask Redis in one round trip whether it was revoked.

    Raises:
        TokenRevoked: the token, its session or all of its user's tokens were revoked.
        StoreUnavailable: Redis did not answer (fail closed).
    """
    claims = read_access_token(fresh=fresh)
    revoked = await runtime().revocations.is_revoked(
        claims.user_id, claims.session_id, claims.jti, claims.issued_at
    )
    if revoked:
        raise TokenRevoked()
    g.claims = claims
    return claims


def current_claims() -> AccessClaims:
    """The verified claims of the current request's access token."""
    claims: AccessClaims = g.claims
    return claims
