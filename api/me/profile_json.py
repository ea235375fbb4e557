"""GET /me's body written by hand: the bytes pydantic writes for MeResponse, without pydantic.

The Flask view serialises MeResponse with `model_dump_json()`; the lane (api.me.lane)
answers the same user with these bytes. Same members in the same order, no spaces,
text escaped as pydantic escapes it (quotes, backslashes and control characters only;
everything else as UTF-8), times in ISO 8601 with `Z` for UTC and microseconds only
when there are some. tests/unit/test_profile_json.py holds the two to each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from json.encoder import encode_basestring

from api.me.service import ProfileView

_UTC = timedelta(0)


def profile_json(view: ProfileView) -> bytes:
    """MeResponse's JSON for `view`, byte for byte."""
    return (
        f'{{"id":"{view.id}","email":{encode_basestring(view.email)},'
        f'"role":{encode_basestring(view.role)},"created_at":"{_timestamp(view.created_at)}",'
        f'"email_verified":{_boolean(view.email_verified)},'
        f'"mfa_enabled":{_boolean(view.mfa_enabled)}}}'
    ).encode()


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _timestamp(moment: datetime) -> str:
    # isoformat() writes microseconds only when there are some, as pydantic does; pydantic
    # spells a zero offset `Z` (asyncpg hands timestamptz back in UTC).
    offset = moment.utcoffset()
    if offset is None:
        return moment.isoformat()
    if offset == _UTC:
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return moment.isoformat()
