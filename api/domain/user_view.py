"""UserView: a user as services hand it to the routes, copied from its row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from db.models import User


@dataclass(frozen=True)
class UserView:
    """What the routes may show of a user: never its password hash, version or normalised
    address."""

    id: uuid.UUID
    email: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


def user_view(user: User) -> UserView:
    """The view of a loaded row, taken while its unit of work is open."""
    return UserView(
        id=user.id,
        email=user.email,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )
