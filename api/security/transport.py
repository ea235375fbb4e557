"""How a token travels: the Authorization header or a cookie, and the CSRF rule of cookies.

Separate from how a token is checked (api.security.verifier). The Authorization
header is read the way RFC 6750 and RFC 9110 say: the scheme case-insensitively, a
bare `Bearer` as no token, and an oversized header refused before any decoding.
Cookies are the ones Flask-JWT-Extended sets at login (double-submit CSRF: a request
that changes state echoes the CSRF cookie, which is also a claim of the token).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Request

from api.domain.errors import Forbidden, TokenError, TokenInvalid, TokenMissing

MAX_AUTHORIZATION_BYTES = 8 * 1024
ACCESS_COOKIE = "access_token_cookie"
REFRESH_COOKIE = "refresh_token_cookie"
CSRF_HEADER = "X-CSRF-Token"
# The readable (not HttpOnly) cookies whose value a browser client echoes in CSRF_HEADER.
CSRF_ACCESS_COOKIE = "csrf_access_token"
CSRF_REFRESH_COOKIE = "csrf_refresh_token"
CSRF_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Where a gateway's forward-auth check names the method of the request it checks: Caddy's
# forward_auth and Traefik's ForwardAuth ask with GET and say the method here. They can
# only add the CSRF rule to a request, never lift it: anything but exactly one safe
# method there (a list, a repeated or empty header) counts as a state change.
FORWARDED_METHOD_HEADERS = ("X-Forwarded-Method", "X-Original-Method")
_BEARER = re.compile(r"bearer(?:[ \t]+(?P<token>.*))?", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class PresentedToken:
    """A token as the client sent it, and how."""

    token: str
    from_cookie: bool = False
    # The X-CSRF-Token header of a state-changing cookie request ("" when absent).
    csrf_echo: str | None = None

    def check_csrf(self, expected: str | None) -> None:
        """Refuse a state-changing cookie request that does not echo the token's CSRF value.

        Raises:
            Forbidden: the echo is missing or wrong.
        """
        if self.csrf_echo is None:
            return
        if not expected or not hmac.compare_digest(self.csrf_echo, expected):
            raise Forbidden("The CSRF token is missing or wrong.")


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is none.

    Raises:
        TokenInvalid: the header is longer than any token this service issues.
    """
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise TokenInvalid("The Authorization header is too large.")
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        return None
    return (match.group("token") or "").strip() or None


def lone_bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of an ASGI request's one `Authorization: Bearer` header, for a lane; None
    when there is none, or several, or it is oversized: the Flask views answer those."""
    values = [value for name, value in headers if name == b"authorization"]
    if len(values) != 1:
        return None
    try:
        return bearer_token(values[0].decode("latin-1"))
    except TokenError:
        return None


def presented_token(request: Request, *, refresh: bool = False) -> PresentedToken | None:
    """The request's token: the Authorization header first, then the cookie."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        return PresentedToken(token)
    cookie = request.cookies.get(REFRESH_COOKIE if refresh else ACCESS_COOKIE)
    if not cookie:
        return None
    echo = request.headers.get(CSRF_HEADER, "") if _changes_state(request) else None
    return PresentedToken(cookie, from_cookie=True, csrf_echo=echo)


def _changes_state(request: Request) -> bool:
    if request.method.upper() in CSRF_METHODS:
        return True
    return any(_claims_a_change(request.headers.getlist(name)) for name in FORWARDED_METHOD_HEADERS)


def _claims_a_change(claimed: list[str]) -> bool:
    # "GET, POST" or a header sent twice may be read by the upstream as the other method.
    if not claimed:
        return False
    return len(claimed) != 1 or claimed[0].strip().upper() not in SAFE_METHODS


def required_token(request: Request, *, refresh: bool = False) -> PresentedToken:
    """The request's token.

    Raises:
        TokenMissing: there is none.
        TokenInvalid: the Authorization header is oversized.
    """
    presented = presented_token(request, refresh=refresh)
    if presented is None:
        raise TokenMissing()
    return presented
