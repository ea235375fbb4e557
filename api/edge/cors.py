"""CORS for browser pages on other origins: an allowlist of exact origins, with credentials.

Added by the ASGI bridge to every answer (Flask's and the lanes' alike), so a page on
an allowed origin can read any of them, its cookies included. A request from any other
origin gets no CORS header at all, and the browser keeps the answer from the page.
Preflights of an allowed origin are answered by CorsPreflightLane, except on the routes
a feature declares for gateways (`for_gateways`, e.g. /auth/verify), which answer every
method the same way.
With CORS_ALLOWED_ORIGINS empty nothing here runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint
from flask.sansio.app import App

from api.edge.lanes import Headers, Reply, Taken, declare_for_app, declared
from api.security.transport import CSRF_HEADER

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = f"Authorization, Content-Type, {CSRF_HEADER}"
# What a page may read of an answer beyond the CORS-safelisted headers.
EXPOSED_HEADERS = (
    "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, WWW-Authenticate"
)
# Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200).
PREFLIGHT_MAX_AGE = 600
PREFLIGHT_ROUTE = "cors_preflight"
_GATEWAY_PATHS = "auth_api.gateway_paths"


def for_gateways(blueprint: Blueprint, path: str) -> None:
    """Declare `path` and every path below it as routes for gateways: they answer every
    method the same way, so no CORS preflight is answered there."""
    declare_for_app(blueprint, _GATEWAY_PATHS, path)


def gateway_paths(app: App) -> list[str]:
    """The paths the app's blueprints declared for gateways."""
    return declared(app, _GATEWAY_PATHS)


class Cors:
    """The allowlist, and the headers it puts on answers."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(origins)

    @property
    def enabled(self) -> bool:
        return bool(self._origins)

    def allowed_origin(self, scope: dict[str, Any]) -> str | None:
        """The request's `Origin` when it is exactly one of the allowlist's; else None."""
        values = [v for name, v in scope["headers"] if name == b"origin"]
        if len(values) != 1:
            return None
        origin = values[0].decode("latin-1")
        return origin if origin in self._origins else None

    def on_answer(self, scope: dict[str, Any], headers: Headers) -> Headers:
        """`headers` with the CORS headers the request's origin gets (none unless allowed)."""
        if not self._origins:
            return headers
        origin = self.allowed_origin(scope)
        added = _vary_origin(headers)
        if origin is not None:
            # Credentials never go with "*": the origin is echoed, and only an allowed one.
            added += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
            ]
        return [(n, v) for n, v in headers if n != b"vary"] + added


class CorsPreflightLane:
    """Answers the preflight of an allowed origin: `204` saying what the page may send (the
    bridge adds the origin and credentials, as to every answer)."""

    def __init__(self, cors: Cors, gateway_paths: Iterable[str] = ()) -> None:
        self._cors = cors
        self._gateway_paths = tuple(gateway_paths)

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """OPTIONS with `Access-Control-Request-Method` from an allowed origin; else None."""
        if scope["method"] != "OPTIONS" or self._for_gateways(scope["path"]):
            return None
        if not any(name == b"access-control-request-method" for name, _ in scope["headers"]):
            return None
        if self._cors.allowed_origin(scope) is None:
            return None
        return Taken(PREFLIGHT_ROUTE, _preflight)

    def _for_gateways(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self._gateway_paths)


async def _preflight() -> Reply:
    # The bridge adds the origin, credentials and Vary, as it does to every answer.
    headers = [
        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
        (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
    ]
    return 204, headers, b""


def _vary_origin(headers: Headers) -> Headers:
    # The answer depends on Origin, so caches must key on it; kept with any other Vary.
    varies = [v.decode("latin-1") for n, v in headers if n == b"vary"]
    names = [name.strip() for value in varies for name in value.split(",") if name.strip()]
    if "origin" not in (name.lower() for name in names):
        names.append("Origin")
    return [(b"vary", ", ".join(names).encode("latin-1"))]
