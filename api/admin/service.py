"""The rules of administering users: listing them, changing their role or disabling them
(at once, everywhere), signing them out, and reading the audit trail."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from api.admin.cursors import after_event, after_user, cursor_after
from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.errors import Forbidden, LastAdmin, NotFound, ValidationFailed
from api.domain.session_ending import SessionEnding
from api.domain.user_view import UserView, user_view
from api.security.claims import AccessClaims
from api.security.permissions import ADMIN
from db.audit import EventFilter
from db.emails import normalise_email
from db.engine import Database
from db.models import AuditEvent, User
from db.revocation_store import RevocationStore
from db.unit_of_work import UnitOfWork

T = TypeVar("T")

# A disabled user's mark outlives every token issued before it by this much (clock skew
# between the workers that issue tokens and Redis).
_MARK_MARGIN = 60


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, and the cursor that asks for the next (None: this is the last)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class AuditEventView:
    """An audit event as GET /admin/audit-events shows it."""

    id: int
    type: str
    occurred_at: datetime
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


def audit_event_view(event: AuditEvent) -> AuditEventView:
    """The view of a loaded row, taken while its unit of work is open."""
    return AuditEventView(
        id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        user_id=event.user_id,
        actor_id=event.actor_id,
        session_id=event.session_id,
        ip=event.ip,
        user_agent=event.user_agent,
        details=event.details,
    )


@dataclass(frozen=True)
class AccessChange:
    """What PATCH /admin/users/{id} asks for: a new role, a new disabled flag, or both."""

    role: str | None = None
    disabled: bool | None = None


def _page(
    items: list[T], limit: int, key: Callable[[T], tuple[datetime, uuid.UUID | int]]
) -> Page[T]:
    # `items` were read with one more than the limit: that one, if there, says a next page exists.
    if len(items) <= limit:
        return Page(items, None)
    return Page(items[:limit], cursor_after(key(items[limit - 1])))


class AdminService:
    """Built once per worker; each method owns its transaction."""

    def __init__(
        self,
        database: Database,
        ending: SessionEnding,
        revocations: RevocationStore,
        trail: AuditTrail,
        settings: Settings,
    ) -> None:
        self._database = database
        self._ending = ending
        self._revocations = revocations
        self._trail = trail
        self._settings = settings

    async def users(
        self, email_prefix: str | None, cursor: str | None, limit: int
    ) -> Page[UserView]:
        """Users newest first, from the one after `cursor`, whose normalised address starts
        with the normalised `email_prefix`.

        Raises:
            ValidationFailed: `cursor` is not a user cursor this API returned.
        """
        after = after_user(cursor)
        prefix = normalise_email(email_prefix) if email_prefix else None
        async with self._database.unit_of_work() as uow:
            users = await uow.users.page(prefix, after, limit + 1)
            views = [user_view(user) for user in users]
        return _page(views, limit, lambda user: (user.created_at, user.id))

    async def user(self, user_id: uuid.UUID) -> UserView:
        """One user.

        Raises:
            NotFound: no user has this id.
        """
        async with self._database.unit_of_work() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("No such user.")
            return user_view(user)

    async def update(
        self, actor: AccessClaims, target: uuid.UUID, change: AccessChange
    ) -> UserView:
        """Change a user's role or disabled flag. Either change revokes every session and
        token of the user before the answer; a disabled user's tokens are refused whenever
        they were issued, and re-enabling revives none of them.

        The actor may grant only a role whose permissions it holds, may not touch a user
        whose role holds a permission it lacks, and may not change its own role or disable
        itself.

        Raises:
            NotFound: no user has this id.
            ValidationFailed: the role is not one of ROLE_PERMISSIONS.
            Forbidden: the change is beyond the actor's own permissions, or on itself.
            LastAdmin: the change would leave no active admin.
        """
        if change.role is not None and change.role not in self._settings.role_permissions:
            roles = ", ".join(sorted(self._settings.role_permissions))
            raise ValidationFailed([{"field": "role", "message": f"Must be one of: {roles}."}])
        # Redis marks are keyed by the canonical text the verifier reads from `sub`.
        user_id = str(target)
        async with self._database.unit_of_work() as uow:
            user = await self._lock_for_change(uow, actor, target, change)
            was_disabled = user.disabled
            before = {"role": user.role, "disabled": user.disabled}
            role = change.role if change.role is not None else user.role
            disabled = change.disabled if change.disabled is not None else user.disabled
            after = {"role": role, "disabled": disabled}
            changed = after != before
            if changed:
                await uow.users.update_access(user, role=role, disabled=disabled)
                await self._ending.everything(uow, user_id)
                if was_disabled and not disabled:
                    # Before the commit: if it fails, the database still refuses this user.
                    await self._revocations.clear_disabled(
                        user_id, time.time(), self._settings.refresh_token_ttl
                    )
                await uow.record(
                    self._trail.event(
                        EventType.ADMIN_USER_UPDATED,
                        user_id=user.id,
                        actor_id=actor.user_id,
                        details={"before": before, "after": after},
                    )
                )
                await uow.commit()
            view = user_view(user)
        if disabled:
            # After the commit (a failed one must not lock the user out), before the answer;
            # written again by a repeated request, so a retry after a Redis failure sets it.
            await self._revocations.mark_disabled(
                user_id, self._settings.refresh_token_ttl + _MARK_MARGIN
            )
        return view

    async def sign_out(self, actor: AccessClaims, target: uuid.UUID) -> None:
        """Revoke every session and token of the user.

        Raises:
            NotFound: no user has this id.
            Forbidden: the user's role holds a permission the actor lacks.
        """
        async with self._database.unit_of_work() as uow:
            user = await uow.users.lock(target)
            if user is None:
                raise NotFound("No such user.")
            # Signing someone out everywhere is a change to them, under the same rule as
            # PATCH: a support can't cut the admins above it off (itself it may).
            if str(user.id) != actor.user_id and not self._held(actor).issuperset(
                self._settings.role_permissions.get(user.role, ())
            ):
                raise Forbidden("This user's role holds a permission you do not have.")
            await self._ending.everything(uow, str(target))
            event = self._trail.event(
                EventType.ADMIN_SESSIONS_REVOKED, user_id=target, actor_id=actor.user_id
            )
            await uow.record(event)
            await uow.commit()

    async def events(
        self, where: EventFilter, cursor: str | None, limit: int
    ) -> Page[AuditEventView]:
        """Audit events newest first, from the one after `cursor`, matching `where`.

        Raises:
            ValidationFailed: `cursor` is not an audit-event cursor this API returned.
        """
        after = after_event(cursor)
        async with self._database.unit_of_work() as uow:
            events = await uow.audit.page(where, after, limit + 1)
            views = [audit_event_view(event) for event in events]
        return _page(views, limit, lambda event: (event.occurred_at, event.id))

    async def _lock_for_change(
        self, uow: UnitOfWork, actor: AccessClaims, user_id: uuid.UUID, change: AccessChange
    ) -> User:
        # Every change that could remove an active admin locks the active admins first, in
        # one order, then its user: two such changes wait for each other instead of each
        # leaving the other as the last admin (or deadlocking).
        may_remove_admin = change.disabled is True or (
            change.role is not None and change.role != ADMIN
        )
        admins = await uow.users.lock_active_admins(ADMIN) if may_remove_admin else []
        user = await uow.users.lock(user_id)
        if user is None:
            raise NotFound("No such user.")
        # Checked on the locked row: the role it holds cannot change until the commit.
        self._check_privileges(actor, user, change)
        if may_remove_admin and admins == [user.id]:
            raise LastAdmin()
        return user

    def _check_privileges(self, actor: AccessClaims, user: User, change: AccessChange) -> None:
        # Without these, users:write is admin: it could grant itself (or a friend) any role,
        # or demote and disable the admins above it.
        if str(user.id) == actor.user_id and (
            (change.role is not None and change.role != user.role) or change.disabled is True
        ):
            raise Forbidden("Nobody changes their own role or disables themselves.")
        held = self._held(actor)
        if not held.issuperset(self._settings.role_permissions.get(user.role, ())):
            raise Forbidden("This user's role holds a permission you do not have.")
        if change.role is not None and not held.issuperset(
            self._settings.role_permissions[change.role]
        ):
            raise Forbidden("This role holds a permission you do not have.")

    def _held(self, actor: AccessClaims) -> frozenset[str]:
        # What the token carries, as far as ROLE_PERMISSIONS still grants it to that role.
        granted = self._settings.role_permissions.get(actor.role, ())
        return frozenset(actor.permissions).intersection(granted)
