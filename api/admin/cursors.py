"""Opaque keyset cursors: base64url of the last listed item's sort key."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import datetime

from api.admin.schemas import in_utc
from api.domain.errors import ValidationFailed

# Audit event ids are Postgres bigints, written in ASCII digits by cursor_after.
_EVENT_ID = re.compile(r"[0-9]{1,19}")
_BIGINT_MAX = 2**63 - 1


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _malformed() from None
    if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
        raise _malformed()
    return parts


def _malformed() -> ValidationFailed:
    return ValidationFailed([{"field": "cursor", "message": "Not a cursor this API returned."}])


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _malformed() from None
    if moment.tzinfo is None:
        raise _malformed()
    try:
        return in_utc(moment)
    except ValueError:
        raise _malformed() from None


def cursor_after(key: tuple[datetime, uuid.UUID | int]) -> str:
    """The cursor after the listed item whose sort key is `key` (a user's or an audit
    event's: its moment, then its id)."""
    moment, item_id = key
    return _encode([moment.isoformat(), str(item_id)])


def after_user(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The sort key a user cursor stands for.

    Raises:
        ValidationFailed: not a cursor this API returned.
    """
    if cursor is None:
        return None
    moment, user_id = _decode(cursor)
    try:
        return _moment(moment), uuid.UUID(user_id)
    except ValueError:
        raise _malformed() from None


def after_event(cursor: str | None) -> tuple[datetime, int] | None:
    """The sort key an audit-event cursor stands for.

    Raises:
        ValidationFailed: not a cursor this API returned.
    """
    if cursor is None:
        return None
    moment, event_id = _decode(cursor)
    if not _EVENT_ID.fullmatch(event_id) or int(event_id) > _BIGINT_MAX:
        raise _malformed()
    return _moment(moment), int(event_id)
