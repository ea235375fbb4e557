"""GET /auth/verify with a bearer token, served on the worker's event loop in front of Flask.

The forward-auth check is the hottest route: a gateway asks it before every request
it forwards. It needs no Postgres and no request thread: the JWT is checked by
api.security.tokens.AccessTokenDecoder (the same key, pinned algorithm, issuer and
audience as Flask-JWT-Extended's), then one Redis MGET answers every revocation
question. Requests it does not take (a cookie token, no token, another method) go to
the Flask view of the same route.
"""

from __future__ import annotations

from typing import Any

from api.errors import (
    PROBLEM_JSON,
    ApiError,
    ServiceUnavailable,
    TokenInvalid,
    TokenRevoked,
    problem_body,
)
from api.runtime import Runtime
from api.security.tokens import AccessTokenDecoder
from api.security.transport import normalise_authorization
from db.errors import StoreUnavailable

PATH = "/auth/verify"
BEARER = "Bearer "
Headers = list[tuple[bytes, bytes]]


class VerifyLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._decoder = AccessTokenDecoder(runtime.settings)

    def bearer_token(self, scope: dict[str, Any]) -> str | None:
        """The token of a bearer-authenticated GET of the verify route; None for the rest."""
        if scope["path"] != PATH or scope["method"] != "GET":
            return None
        values = [v for name, v in scope["headers"] if name == b"authorization"]
        if len(values) != 1:
            return None
        environ = {"HTTP_AUTHORIZATION": values[0].decode("latin-1")}
        try:
            normalise_authorization(environ)
        except TokenInvalid:
            return None
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        if not header.startswith(BEARER) or "," in header:
            return None
        return header[len(BEARER) :]

    async def answer(self, token: str) -> tuple[int, Headers, bytes]:
        """Check the token; 204 with the identity headers, or the problem."""
        try:
            claims = self._decoder.decode(token)
            revoked = await self._runtime.revocations.is_revoked(
                claims.user_id, claims.session_id, claims.jti, claims.issued_at
            )
            if revoked:
                raise TokenRevoked()
        except StoreUnavailable:
            return _problem(ServiceUnavailable(headers={"Retry-After": "5"}))
        except ApiError as error:
            return _problem(error)
        return (
            204,
            [
                (b"x-auth-user", claims.user_id.encode()),
                (b"x-auth-session", claims.session_id.encode()),
                (b"x-auth-role", claims.role.encode("latin-1", "replace")),
            ],
            b"",
        )


def _problem(error: ApiError) -> tuple[int, Headers, bytes]:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return error.status, headers, problem_body(error)
