"""UserRepository: the only code that reads and writes the users table."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import ConflictError
from db.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, email: str, password_hash: str) -> User:
        """Insert a user and return it with its generated columns.

        Raises:
            ConflictError: another user has this email, whatever its case.
        """
        user = User(email=email, password_hash=password_hash)
        self._session.add(user)
        try:
            await self._session.flush()
        except IntegrityError:
            raise ConflictError("email") from None
        await self._session.refresh(user)
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, if any."""
        return await self._session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email compared case-insensitively, if any."""
        query = select(User).where(func.lower(User.email) == email.lower())
        return (await self._session.execute(query)).scalar_one_or_none()

    async def set_password_hash(self, user: User, password_hash: str) -> None:
        """Replace the stored hash (after a parameter change or a new password)."""
        user.password_hash = password_hash
        await self._session.flush()

    async def delete(self, user: User) -> None:
        """Delete the user; their sessions go with them (ON DELETE CASCADE)."""
        await self._session.delete(user)
        await self._session.flush()
