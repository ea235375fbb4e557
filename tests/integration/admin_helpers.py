"""Making admins in the integration harness: a registered user promoted in the database."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from db.emails import normalise_email
from tests.integration.conftest import Harness


async def set_role(harness: Harness, email: str, role: str) -> None:
    async with harness.resources.database.unit_of_work() as uow:
        user = await uow.users.get_by_email(normalise_email(email))
        assert user is not None
        await uow.users.update_access(user, role=role, disabled=user.disabled)
        await uow.commit()


async def admin_token(harness: Harness, email: str = "admin@example.com") -> tuple[Any, str]:
    """A registered admin and a fresh access token of theirs."""
    user = await harness.register(email)
    await set_role(harness, email, "admin")
    return user, (await harness.login(email))["access_token"]


def random_email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


def role_of(access_token: str) -> str:
    """The role an access token carries (read, not verified)."""
    payload = access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["role"])
