"""OutboxRepository: the only code that reads and writes the outbox table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.batches import delete_batch
from db.models import OutboxMessage


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    """A message to queue: who it goes to, what it says, and whose account it is about."""

    kind: str
    recipient: str
    subject: str
    text_body: str
    html_body: str
    user_id: uuid.UUID | None = None


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, message: NewMessage, now: datetime) -> OutboxMessage:
        """Queue `message`, due now, with a fresh idempotency key."""
        row = OutboxMessage(
            message_id=uuid.uuid4().hex,
            user_id=message.user_id,
            kind=message.kind,
            recipient=message.recipient,
            subject=message.subject,
            text_body=message.text_body,
            html_body=message.html_body,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def next_due(self, now: datetime) -> OutboxMessage | None:
        """The oldest message due by `now`, its row locked until the transaction ends."""
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return (await self._session.execute(query)).scalar_one_or_none()

    async def sent(self, message: OutboxMessage, now: datetime, *, keep_bodies: bool) -> None:
        """Record the delivery; the bodies (and the token in them) go unless `keep_bodies`."""
        message.attempts += 1
        message.sent_at = now
        message.last_error = None
        if not keep_bodies:
            message.text_body = message.html_body = None
        await self._session.flush()

    async def retry_at(self, message: OutboxMessage, when: datetime, error: str) -> None:
        """Record a failed attempt; the message is due again at `when`."""
        message.attempts += 1
        message.next_attempt_at = when
        message.last_error = error[:200]
        await self._session.flush()

    async def failed(self, message: OutboxMessage, now: datetime, error: str) -> None:
        """Give the message up; its bodies go."""
        message.attempts += 1
        message.failed_at = now
        message.last_error = error[:200]
        message.text_body = message.html_body = None
        await self._session.flush()

    async def depth(self) -> int:
        """How many messages wait to be sent (due or retrying)."""
        query = select(func.count()).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None)
        )
        return int(await self._session.scalar(query) or 0)

    async def delete_done_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` messages sent or given up before `cutoff`; how many."""
        done = or_(OutboxMessage.sent_at < cutoff, OutboxMessage.failed_at < cutoff)
        return await delete_batch(self._session, OutboxMessage.id, done, limit)
