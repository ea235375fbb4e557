"""GET /auth/verify with a bearer token, served on the worker's event loop in front of Flask.

The forward-auth check is the hottest route: a gateway asks it before every request
it forwards. It needs no Postgres and no Flask: the worker's one
TokenVerifier (the same one the Flask guard uses) checks the token and asks Redis in
one MGET. Any method and any path below /auth/verify/ get the same answer: Envoy's
`ext_authz` HTTP service forwards the original method and appends the original path to
its prefix. A body, if sent, is ignored (the bridge has consumed it). Requests it does
not take (a cookie token, no token) go to the Flask view of the same routes
(api.auth.routes, which registers this lane), which answers the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api.domain.errors import DomainError
from api.edge.lanes import Reply, Taken, encode_headers, problem_reply
from api.errors import from_store_failure
from api.security.transport import lone_bearer_token
from db.errors import StoreUnavailable

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

PATH = "/auth/verify"
PREFIX = PATH + "/"
# The URL rules of the verify routes, as Flask declares them (and metrics label them).
RULE_BELOW = PREFIX + "<path:forwarded_path>"
RULES = (PATH, PREFIX, RULE_BELOW)
# Every method a gateway may forward; the lane itself takes any.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class VerifyLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """Bearer-authenticated requests to the verify routes; the rest go to Flask."""
        token = self.bearer_token(scope)
        if token is None:
            return None
        return Taken(self.route(scope), lambda: self.answer(token))

    def bearer_token(self, scope: dict[str, Any]) -> str | None:
        """The token of a bearer-authenticated request to the verify routes; None for the rest."""
        path: str = scope["path"]
        if path != PATH and not path.startswith(PREFIX):
            return None
        return lone_bearer_token(scope["headers"])

    @staticmethod
    def route(scope: dict[str, Any]) -> str:
        """The URL rule a request the lane answered belongs to (a closed set, for metrics)."""
        path = scope["path"]
        return path if path in (PATH, PREFIX) else RULE_BELOW

    async def answer(self, token: str) -> Reply:
        """Check the token; 204 with the identity headers, or the problem."""
        try:
            claims = await self._runtime.resources.verifier.authenticate(token)
        except StoreUnavailable as failure:
            return problem_reply(from_store_failure(failure))
        except DomainError as error:
            return problem_reply(error)
        return 204, encode_headers(claims.identity_headers()), b""
