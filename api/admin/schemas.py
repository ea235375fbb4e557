"""Query strings and bodies of the /admin routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from api.schemas import NotNull, QuerySchema, ResponseSchema, Schema, Storable


def in_utc(moment: datetime) -> datetime:
    """`moment` in UTC.

    Raises:
        ValueError: it falls outside years 1-9999 in UTC (0001-01-01T00:00:00+14:00 does),
            which no query can hold.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within years 1-9999 in UTC") from None


# A time filter, with its offset, that stays a time when moved to UTC.
Moment = Annotated[AwareDatetime, AfterValidator(in_utc)]
Limit = Annotated[int, Field(ge=1, le=100, description="1-100")]
Cursor = Annotated[str, StringConstraints(min_length=1, max_length=512), Storable]


class UserListQuery(QuerySchema):
    limit: Limit = 50
    cursor: Cursor | None = None
    email: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=254),
            Storable,
            Field(description="A prefix of the normalised address (case-insensitive)."),
        ]
        | None
    ) = None


Role = Annotated[str, StringConstraints(min_length=1, max_length=16), Storable]


class UserUpdate(Schema):
    role: Annotated[Role | SkipJsonSchema[None], NotNull] = None
    disabled: Annotated[bool | SkipJsonSchema[None], NotNull] = None


class AdminUserResponse(ResponseSchema):
    id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserListResponse(ResponseSchema):
    users: list[AdminUserResponse]
    next_cursor: str | None


class AuditEventQuery(QuerySchema):
    user_id: uuid.UUID | None = None
    type: Annotated[str, StringConstraints(min_length=1, max_length=40), Storable] | None = None
    since: Annotated[Moment, Field(description="Inclusive, RFC 3339.")] | None = None
    until: Annotated[Moment, Field(description="Exclusive, RFC 3339.")] | None = None
    limit: Limit = 50
    cursor: Cursor | None = None


class AuditEventResponse(ResponseSchema):
    id: Annotated[str, BeforeValidator(str)]
    type: str
    occurred_at: datetime
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class AuditEventListResponse(ResponseSchema):
    events: list[AuditEventResponse]
    next_cursor: str | None
