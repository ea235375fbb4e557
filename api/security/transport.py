"""How a token travels: the Authorization header, read the way RFC 6750 and RFC 9110 say.

Flask-JWT-Extended reads `Authorization: Bearer <token>` case-sensitively and calls a
bare `Bearer` malformed; here the scheme is matched case-insensitively, a header with
no token counts as no token, and an oversized one is refused before any decoding.
The cookie transport is Flask-JWT-Extended's own (see api.security.tokens).
"""

from __future__ import annotations

import re
from typing import Any

from api.errors import TokenInvalid

MAX_AUTHORIZATION_BYTES = 8 * 1024
_BEARER = re.compile(r"bearer(?:[ \t]+(?P<token>.*))?", re.IGNORECASE | re.DOTALL)


def normalise_authorization(environ: dict[str, Any]) -> None:
    """Rewrite the request's Authorization header into the one form the verifier reads.

    Raises:
        TokenInvalid: the header is longer than any token this service issues.
    """
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise TokenInvalid("The Authorization header is too large.")
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        return
    token = (match.group("token") or "").strip()
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    else:
        del environ["HTTP_AUTHORIZATION"]
