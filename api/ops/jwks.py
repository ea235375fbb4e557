"""GET /.well-known/jwks.json: the public keys that verify this service's tokens (RFC 7517).

Every gateway and service that checks tokens itself fetches it whenever its cache of
the set expires, so it is answered on the worker's event loop in front of Flask, from
bytes made once per worker (the keys never change while a process lives). HEAD and
the other methods go to the Flask view of the same route (api.ops.routes, which
registers this lane), which answers from the same bytes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from api.edge.lanes import Reply, Taken
from api.security.keys import KeySet

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

PATH = "/.well-known/jwks.json"
CONTENT_TYPE = "application/json"
# Long enough to spare the service, short enough that a rotation reaches every cache
# well before the old key's tokens are refused (the old key stays until its tokens expire).
CACHE_CONTROL = "public, max-age=300"


def jwks_body(keys: KeySet) -> bytes:
    """The JWK Set of `keys` as the route answers it: the signing key first; HS256 has none."""
    return json.dumps(keys.jwks(), separators=(",", ":")).encode()


class JwksLane:
    """Answers GET /.well-known/jwks.json from bytes made once."""

    def __init__(self, runtime: Runtime) -> None:
        body = jwks_body(runtime.keys)
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", CACHE_CONTROL.encode()),
        ]
        self._reply: Reply = (200, headers, body)

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """GET of the JWKS path (any query); the rest go to Flask."""
        if scope["path"] != PATH or scope["method"] != "GET":
            return None
        return Taken(PATH, self._answer)

    async def _answer(self) -> Reply:
        return self._reply
