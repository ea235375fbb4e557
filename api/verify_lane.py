"""GET /auth/verify with a bearer token, served on the worker's event loop in front of Flask.

The forward-auth check is the hottest route: a gateway asks it before every request
it forwards. It needs no Postgres and no request thread: the worker's one
TokenVerifier (the same one the Flask guard uses) checks the token and asks Redis in
one MGET. Requests it does not take (a cookie token, no token, another method) go to
the Flask view of the same route, which answers the same way.
"""

from __future__ import annotations

from typing import Any

from api.errors import PROBLEM_JSON, ApiError, ServiceUnavailable, TokenError, problem_body
from api.runtime import Runtime
from api.security.transport import bearer_token
from db.errors import StoreUnavailable

PATH = "/auth/verify"
Headers = list[tuple[bytes, bytes]]


class VerifyLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def bearer_token(self, scope: dict[str, Any]) -> str | None:
        """The token of a bearer-authenticated GET of the verify route; None for the rest."""
        if scope["path"] != PATH or scope["method"] != "GET":
            return None
        values = [v for name, v in scope["headers"] if name == b"authorization"]
        if len(values) != 1:
            return None
        try:
            return bearer_token(values[0].decode("latin-1"))
        except TokenError:
            # Flask's view answers an oversized header with the same problem.
            return None

    async def answer(self, token: str) -> tuple[int, Headers, bytes]:
        """Check the token; 204 with the identity headers, or the problem."""
        try:
            claims = await self._runtime.resources.verifier.authenticate(token)
        except StoreUnavailable:
            return _problem(ServiceUnavailable(headers={"Retry-After": "5"}))
        except ApiError as error:
            return _problem(error)
        headers = [(k.lower().encode(), v.encode()) for k, v in claims.identity_headers()]
        return 204, headers, b""


def _problem(error: ApiError) -> tuple[int, Headers, bytes]:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return error.status, headers, problem_body(error)
