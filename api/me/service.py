"""Rules of the signed-in user's own account."""

from __future__ import annotations

import uuid

from api.errors import TokenRevoked
from api.security.tokens import AccessClaims
from db.engine import UnitOfWork
from db.models import User


async def get_me(uow: UnitOfWork, claims: AccessClaims) -> User:
    """The user the token belongs to.

    Raises:
        TokenRevoked: the user no longer exists (deleted after the token was issued).
    """
    user = await uow.users.get(uuid.UUID(claims.user_id))
    if user is None:
        raise TokenRevoked()
    return user
