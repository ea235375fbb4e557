"""AuditEventRepository: the only code that reads and writes the audit_events table.

Events are written in the transaction of the change they record. Where the change is
one statement on its own (opening a session, rotating a refresh token), `recorded`
makes the change and its event one statement, so neither can exist without the other
and the change costs no extra round trip. Whatever writes an event tells its unit of
work (or its statements) through `Written`, which reports it once committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Insert,
    String,
    Table,
    Update,
    Uuid,
    bindparam,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from db.batches import delete_batch
from db.models import AuditEvent


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """An event to record: what happened, when, to whom, by whom, from where."""

    type: str
    occurred_at: datetime
    user_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The parameters of a `recorded` statement for this event."""
        values = self.values()
        return {f"event_{name}": values[name] for name in _COLUMN_TYPES}

    def values(self) -> dict[str, Any]:
        """The row's columns."""
        return {
            "type": self.type,
            "occurred_at": self.occurred_at,
            "user_id": self.user_id,
            "actor_id": self.actor_id,
            "session_id": self.session_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": self.details,
        }


# Told of each event a statement wrote, so the unit of work can report it once committed.
Written = Callable[[NewEvent], None]


@dataclass(frozen=True)
class EventFilter:
    """Which events a listing shows: all of them by default."""

    user_id: uuid.UUID | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_COLUMN_TYPES: dict[str, TypeEngine[Any]] = {
    "type": String(),
    "occurred_at": DateTime(timezone=True),
    "user_id": Uuid(),
    "actor_id": Uuid(),
    "ip": String(),
    "user_agent": String(),
    "details": JSONB(),
}


def recorded(change: Insert | Update) -> Insert:
    """`change` (which must return the id of a session) and an event, as one statement: build
    it once, and execute it with the change's parameters and `NewEvent.params()`.

    The event's session is the one `change` returned; with no row returned, no event is
    written. The statement returns the event's id.
    """
    done = change.cte("change")
    columns = [*_COLUMN_TYPES, "session_id"]
    source = select(
        *(bindparam(f"event_{name}", type_=type_) for name, type_ in _COLUMN_TYPES.items()),
        done.c.id,
    )
    # Core, not ORM: a session executes it with a dict of parameters, not as a bulk insert.
    table = cast(Table, AuditEvent.__table__)
    return insert(table).from_select(columns, source).returning(table.c.id)


class AuditEventWriter:
    """Records an event with one INSERT outside any transaction (when there is no change to
    go with it: a failed login)."""

    def __init__(self, connection: AsyncConnection, written: Written) -> None:
        self._connection = connection
        self._written = written

    async def add(self, event: NewEvent) -> None:
        """Insert the event."""
        await self._connection.execute(insert(AuditEvent).values(**event.values()))
        self._written(event)


class AuditEventRepository:
    def __init__(self, session: AsyncSession, written: Written) -> None:
        self._session = session
        self._written = written

    async def add(self, event: NewEvent) -> None:
        """Record an event in the unit of work's transaction."""
        await self._session.execute(insert(AuditEvent).values(**event.values()))
        self._written(event)

    async def page(
        self, where: EventFilter, after: tuple[datetime, int] | None, limit: int
    ) -> list[AuditEvent]:
        """Up to `limit` events matching `where`, newest first, older than the key `after`."""
        query = select(AuditEvent)
        if where.user_id is not None:
            query = query.where(AuditEvent.user_id == where.user_id)
        if where.type is not None:
            query = query.where(AuditEvent.type == where.type)
        if where.since is not None:
            query = query.where(AuditEvent.occurred_at >= where.since)
        if where.until is not None:
            query = query.where(AuditEvent.occurred_at < where.until)
        if after is not None:
            query = query.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(*after))
        query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
        return list((await self._session.execute(query)).scalars())

    async def delete_before(self, cutoff: datetime, limit: int) -> int:
        """Delete at most `limit` events that occurred before `cutoff`; how many went."""
        old = AuditEvent.occurred_at < cutoff
        return await delete_batch(
            self._session, AuditEvent.id, old, limit, oldest_first=AuditEvent.occurred_at
        )
