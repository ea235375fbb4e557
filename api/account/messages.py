"""The messages an account receives: each written to the outbox in the caller's transaction,
with the token its link carries (stored hashed) issued in the same transaction."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.account.links import Purpose, link, new_token, password_digest
from api.config.settings import Settings
from api.domain.clock import Clock
from db.message_tokens import NewToken
from db.models import User
from db.outbox import NewMessage
from db.unit_of_work import UnitOfWork

SUBJECTS = {
    "verify_email": "Confirm your email address",
    "reset_password": "Reset your password",
    "change_email": "Confirm your new email address",
    "email_change_notice": "Your account's email address is being changed",
}


class OutboxSignal:
    """Wakes this worker's sender when a message was queued, instead of at its next poll."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def queued(self) -> None:
        """A transaction that wrote to the outbox committed."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return when a message was queued, or after `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' * (hours != 1)}"
    minutes = max(seconds // 60, 1)
    return f"{minutes} minute{'s' * (minutes != 1)}"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The plain-text and HTML bodies, from the package's templates (HTML auto-escaped)."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("api.account", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, **values: Any) -> Rendered:
        """Subject and both bodies of the message `kind`."""
        return Rendered(
            SUBJECTS[kind],
            self._env.get_template(f"{kind}.txt").render(**values),
            self._env.get_template(f"{kind}.html").render(**values),
        )


class AccountMail:
    """Queues an account's messages inside the caller's unit of work; the caller commits,
    then calls `queued()`."""

    def __init__(self, settings: Settings, signal: OutboxSignal, clock: Clock) -> None:
        self._settings = settings
        self._signal = signal
        self._clock = clock
        self._templates = Templates()

    def queued(self) -> None:
        """The caller's transaction committed: wake the sender."""
        self._signal.queued()

    async def verification(self, uow: UnitOfWork, user: User) -> None:
        """A verification link to the user's address (superseding any earlier one)."""
        await self._with_link(
            uow, user, Purpose.VERIFY_EMAIL, user.email, self._settings.email_verify_ttl
        )

    async def password_reset(self, uow: UnitOfWork, user: User) -> None:
        """A reset link to the user's address, void once the password changes by any route."""
        await self._with_link(
            uow,
            user,
            Purpose.RESET_PASSWORD,
            user.email,
            self._settings.password_reset_ttl,
            password_digest=password_digest(user.password_hash),
        )

    async def email_change(
        self, uow: UnitOfWork, user: User, new_email: str, new_normalised: str
    ) -> None:
        """A confirmation link to the new address, and a notice (no link) to the old one."""
        await self._with_link(
            uow,
            user,
            Purpose.CHANGE_EMAIL,
            new_email,
            self._settings.email_verify_ttl,
            address=new_normalised,
            new_email=new_email,
        )
        rendered = self._templates.render(
            "email_change_notice", email=user.email, new_email=new_email
        )
        await self._queue(uow, user, "email_change_notice", user.email, rendered)

    async def _with_link(
        self,
        uow: UnitOfWork,
        user: User,
        purpose: Purpose,
        recipient: str,
        ttl: int,
        *,
        address: str | None = None,
        new_email: str | None = None,
        password_digest: bytes | None = None,
    ) -> None:
        now = self._clock()
        token, hashed = new_token()
        await uow.message_tokens.issue(
            NewToken(
                user_id=user.id,
                purpose=purpose,
                token_hash=hashed,
                address=address if address is not None else user.email_normalised,
                new_email=new_email,
                password_digest=password_digest,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        rendered = self._templates.render(
            purpose.value,
            email=recipient,
            link=link(self._settings.public_link_base, purpose, token),
            token=token,
            valid_for=_duration(ttl),
        )
        await self._queue(uow, user, purpose.value, recipient, rendered)

    async def _queue(
        self, uow: UnitOfWork, user: User, kind: str, recipient: str, rendered: Rendered
    ) -> None:
        message = NewMessage(
            kind=kind,
            recipient=recipient,
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            user_id=user.id,
        )
        await uow.outbox.add(message, self._clock())
