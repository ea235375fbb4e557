"""MessageTokenRepository: the only code that reads and writes the message_tokens table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.batches import delete_batch
from db.models import MessageToken


@dataclass(frozen=True, kw_only=True)
class NewToken:
    """A token to store: only its hash, with what it is bound to."""

    user_id: uuid.UUID
    purpose: str
    token_hash: bytes
    address: str
    created_at: datetime
    expires_at: datetime
    new_email: str | None = None
    password_digest: bytes | None = None


class MessageTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def issue(self, token: NewToken) -> None:
        """Store `token`, superseding every unused one of the user with the same purpose."""
        await self.supersede(token.user_id, token.purpose, token.created_at)
        self._session.add(
            MessageToken(
                user_id=token.user_id,
                purpose=token.purpose,
                token_hash=token.token_hash,
                address=token.address,
                new_email=token.new_email,
                password_digest=token.password_digest,
                created_at=token.created_at,
                expires_at=token.expires_at,
            )
        )
        await self._session.flush()

    async def supersede(self, user_id: uuid.UUID, purpose: str, now: datetime) -> int:
        """Void the user's unused tokens of `purpose`; how many there were."""
        query = (
            update(MessageToken)
            .where(
                MessageToken.user_id == user_id,
                MessageToken.purpose == purpose,
                MessageToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(query)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def find_usable(self, token_hash: bytes, purpose: str, now: datetime) -> bool:
        """Whether an unused, unexpired token of `purpose` has this hash (a cheap first look)."""
        query = select(MessageToken.id).where(
            MessageToken.token_hash == token_hash,
            MessageToken.purpose == purpose,
            MessageToken.used_at.is_(None),
            MessageToken.expires_at > now,
        )
        return (await self._session.execute(query)).first() is not None

    async def use(self, token_hash: bytes, purpose: str, now: datetime) -> MessageToken | None:
        """Mark the token used and return it, if it is of `purpose`, unused and unexpired.

        One conditional UPDATE: of any number of concurrent uses, exactly one gets the row.
        """
        query = (
            update(MessageToken)
            .where(
                MessageToken.token_hash == token_hash,
                MessageToken.purpose == purpose,
                MessageToken.used_at.is_(None),
                MessageToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(MessageToken)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(query)).scalar_one_or_none()

    async def delete_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` tokens that expired or were used before `cutoff`; how many."""
        ended = or_(MessageToken.expires_at < cutoff, MessageToken.used_at < cutoff)
        return await delete_batch(self._session, MessageToken.id, ended, limit)
