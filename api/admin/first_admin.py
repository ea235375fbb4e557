"""The first administrator: create an account as admin, or promote an existing one."""

from __future__ import annotations

import enum

from pydantic import ValidationError

from api.auth.schemas import RegisterRequest
from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.errors import ValidationFailed
from api.security.passwords import Passwords, password_problems
from api.security.permissions import ADMIN
from db.emails import NORMALISED_EMAIL_MAX_LENGTH, normalise_email
from db.engine import Database
from db.errors import ConflictError


class Outcome(enum.Enum):
    CREATED = "created"
    PROMOTED = "promoted"
    ALREADY_ADMIN = "already an admin"


class FirstAdmin:
    """Makes an account an admin from the command line (no actor: the operator)."""

    def __init__(
        self, database: Database, passwords: Passwords, trail: AuditTrail, settings: Settings
    ) -> None:
        self._database = database
        self._passwords = passwords
        self._trail = trail
        self._settings = settings

    async def exists(self, email: str) -> bool:
        """Whether an account has this address (once normalised)."""
        async with self._database.unit_of_work() as uow:
            return await uow.users.get_by_email(normalise_email(email)) is not None

    async def promote(self, email: str, password: str) -> Outcome:
        """Give the account with this address the admin role, if `password` is its password.

        Anyone may have registered the address, so knowing the account's password is what
        shows the operator means that account. Its tokens keep their old, lesser
        permissions until it logs in again.

        Raises:
            ValidationFailed: no account has this address, or `password` is not its password.
        """
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get_by_email(normalise_email(email))
            if user is None:
                raise ValidationFailed([{"field": "email", "message": "No such account."}])
            await uow.release()
            if not await self._passwords.verify(user.password_hash, password):
                raise ValidationFailed(
                    [
                        {
                            "field": "password",
                            "message": "not this account's password; nothing was changed",
                        }
                    ]
                )
            if user.role == ADMIN:
                return Outcome.ALREADY_ADMIN
            before = {"role": user.role, "disabled": user.disabled}
            await uow.users.update_access(user, role=ADMIN, disabled=user.disabled)
            event = self._trail.event(
                EventType.ADMIN_USER_UPDATED,
                user_id=user.id,
                details={
                    "before": before,
                    "after": {"role": ADMIN, "disabled": user.disabled},
                    "via": "create-admin",
                },
            )
            await uow.record(event)
            await uow.commit()
        return Outcome.PROMOTED

    async def create(self, email: str, password: str) -> Outcome:
        """Create an account with the admin role, under the rules of registration.

        Raises:
            ValidationFailed: the address or the password breaks a rule, or is taken.
        """
        try:
            request = RegisterRequest.model_validate({"email": email, "password": password})
        except ValidationError as error:
            raise ValidationFailed(
                [{"field": str(e["loc"][0]), "message": e["msg"]} for e in error.errors()]
            ) from None
        problems = password_problems(password, self._settings.password_min_length)
        if problems:
            raise ValidationFailed([{"field": "password", "message": m} for m in problems])
        normalised = normalise_email(request.email)
        if len(normalised) > NORMALISED_EMAIL_MAX_LENGTH:
            raise ValidationFailed([{"field": "email", "message": "The address is too long."}])
        password_hash = await self._passwords.hash(password)
        async with self._database.unit_of_work() as uow:
            try:
                user = await uow.users.add(request.email, normalised, password_hash, role=ADMIN)
            except ConflictError:
                raise ValidationFailed(
                    [{"field": "email", "message": "An account was just made with it."}]
                ) from None
            event = self._trail.event(
                EventType.ADMIN_USER_CREATED, user_id=user.id, details={"via": "create-admin"}
            )
            await uow.record(event)
            await uow.commit()
        return Outcome.CREATED
