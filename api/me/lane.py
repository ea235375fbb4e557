"""GET /me with a bearer token, served on the worker's event loop in front of Flask.

The Flask view (api.me.routes, which registers this lane) checks the token with the
guard, then reads the profile through SQLAlchemy and writes it with pydantic. Here the
worker's one TokenVerifier checks the token while the profile's one fixed statement runs
on the driver's own connection (api.me.service.AccountService.profile_on_driver), so
the request waits one round trip; the body is written by api.me.profile_json. The
answers are the view's, byte for byte: a token the guard refuses gets the same problem
(the profile read, already sent, is dropped, so a revoked token never sees it), then a
missing user `token_revoked`, a store down `503`. GET /me asks nothing of the guard
beyond a valid, unrevoked token: not fresh, no role, no permission, no second factor.
HEAD gets GET's headers without the body, as Flask answers it. Requests it does not take
(a cookie token, no token, two Authorization headers, other methods) go to the view.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from api.domain.errors import TokenError
from api.edge.lanes import Reply, Taken, failure_reply, json_reply
from api.me.profile_json import profile_json
from api.me.service import ProfileView
from api.security.transport import lone_bearer_token

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

PATH = "/me"
# The methods Flask's GET route answers (it adds HEAD to every GET rule).
METHODS = ("GET", "HEAD")


class MeLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """Bearer-authenticated GET and HEAD of /me; the rest go to Flask."""
        if scope["path"] != PATH or scope["method"] not in METHODS:
            return None
        token = lone_bearer_token(scope["headers"])
        if token is None:
            return None
        head = scope["method"] == "HEAD"
        return Taken(PATH, lambda: self.answer(token, head=head))

    async def answer(self, token: str, *, head: bool = False) -> Reply:
        """The profile of the token's user, or the problem the Flask view answers."""
        status, headers, body = await self._reply(token)
        return status, headers, b"" if head else body

    async def _reply(self, token: str) -> Reply:
        try:
            return json_reply(profile_json(await self._profile(token)))
        except Exception as error:
            return failure_reply(error)

    async def _profile(self, token: str) -> ProfileView:
        resources = self._runtime.resources
        verifier = resources.verifier
        try:
            # The signature alone (remembered for the verifier's own check below): it
            # names whose profile to read while Redis is asked about the token.
            user_id = verifier.access_claims(token).user_id
        except TokenError:
            # Refused before any store is asked; authenticate refuses it again, counted
            # as the guard's refusals are.
            claims = await verifier.authenticate(token)
            return await resources.services.account.profile_on_driver(claims.user_id)
        verdict, profile = await asyncio.gather(
            verifier.authenticate(token),
            resources.services.account.profile_on_driver(user_id),
            return_exceptions=True,
        )
        # The guard's answer first, as the view only reads the profile of a good token.
        if isinstance(verdict, BaseException):
            raise verdict
        if isinstance(profile, BaseException):
            raise profile
        return profile
