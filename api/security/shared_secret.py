"""A bearer secret shared with one kind of client (Prometheus and METRICS_TOKEN), not a JWT."""

from __future__ import annotations

import hmac

from api.domain.errors import TokenInvalid, TokenMissing
from api.security.transport import bearer_token


def require_shared_secret(expected: str, authorization: str | None) -> None:
    """Accept only `Authorization: Bearer <expected>`, compared in constant time.

    Raises:
        TokenMissing: no bearer token was sent.
        TokenInvalid: the token is not `expected` (or the header is oversized).
    """
    presented = bearer_token(authorization)
    if presented is None:
        raise TokenMissing()
    # Bytes: compare_digest refuses non-ASCII text, and a client may send any.
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise TokenInvalid("The metrics token is wrong.")
