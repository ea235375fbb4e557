"""Delivering the outbox: one sender per cluster (a Postgres advisory lock), over SMTP.

Each message is one short transaction: take the sender's lock (or leave, another sender
holds it), lock the oldest due row, hand the message to the SMTP server, record the
outcome, commit. Delivery is at least once: a crash between the server's acceptance and
the commit sends the message again, with the same Message-ID (the row's idempotency key),
which is how a receiver recognises the repeat. Nothing here runs inside a request: the
sender is a task on each worker's loop (or `flask --app api send-mail`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from api.account.messages import OutboxSignal
from api.config.settings import Settings
from api.domain.audit import AuditTrail, EventType
from api.domain.clock import Clock
from api.edge.metrics import MAIL_FAILED, MAIL_SENT, OUTBOX_DEPTH
from db.errors import StoreUnavailable
from db.models import OutboxMessage
from db.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# How often an idle sender looks for messages other workers queued.
POLL_SECONDS = 1.0
# Retries back off from 1 s, doubling, to this.
MAX_RETRY_DELAY = 300
SMTP_TIMEOUT = 15.0
# How long a stopping worker lets a delivery under way finish.
STOP_GRACE = SMTP_TIMEOUT + 5


class DeliveryFailed(Exception):
    """The message was not accepted; `permanent` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Transport(Protocol):
    # Whether a delivered message's bodies stay in the outbox (to be read there).
    keeps_bodies: bool
    # The metrics' label.
    name: str

    async def send(self, message: EmailMessage, row: OutboxMessage) -> None:
        """Hand `message` over.

        Raises:
            DeliveryFailed: it was not accepted.
        """


class SmtpTransport:
    """SMTP_URL's server: STARTTLS (unless `?starttls=false`) or TLS (`smtps://`), AUTH when
    the URL has credentials."""

    keeps_bodies = False
    name = "smtp"

    def __init__(self, url: str, timeout: float = SMTP_TIMEOUT) -> None:
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        query = dict(parse_qsl(parts.query))
        self._options = {
            "hostname": parts.hostname,
            "port": parts.port or (465 if implicit_tls else 587),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "use_tls": implicit_tls,
            "start_tls": not implicit_tls and query.get("starttls", "true").lower() == "true",
            "timeout": timeout,
        }

    async def send(self, message: EmailMessage, row: OutboxMessage) -> None:
        try:
            await aiosmtplib.send(message, **self._options)  # type: ignore[arg-type]
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            raise DeliveryFailed(
                f"recipient refused ({', '.join(map(str, codes))})",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryFailed(
                f"{type(error).__name__} {error.code}", permanent=error.code >= 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(type(error).__name__, permanent=False) from None


class LogTransport:
    """No SMTP_URL: the message stays in the outbox and is logged, without its link."""

    keeps_bodies = True
    name = "log"

    async def send(self, message: EmailMessage, row: OutboxMessage) -> None:
        logger.info(
            "mail not sent (SMTP_URL is unset): %s message, outbox id %s; read it in the "
            "outbox table",
            row.kind,
            row.id,
        )


def transport_for(settings: Settings) -> Transport:
    """SMTP when SMTP_URL is set, else the log."""
    if settings.smtp_url is None:
        return LogTransport()
    return SmtpTransport(settings.smtp_url)


class Step(enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"  # an attempt that failed; retried later or given up
    IDLE = "idle"  # nothing due
    ELSEWHERE = "elsewhere"  # another sender holds the lock


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt, after `attempts` failed ones."""
    return float(min(2 ** (attempts - 1), MAX_RETRY_DELAY))


class OutboxSender:
    """Delivers due messages one transaction at a time; as a task with `start`/`stop`, or
    once with `deliver_due`."""

    def __init__(
        self,
        new_unit_of_work: Callable[[], UnitOfWork],
        transport: Transport,
        settings: Settings,
        trail: AuditTrail,
        clock: Clock,
        signal: OutboxSignal | None = None,
    ) -> None:
        self._new_unit_of_work = new_unit_of_work
        self._transport = transport
        self._sender = settings.mail_from
        self._domain = parseaddr(settings.mail_from)[1].rpartition("@")[2]
        self._max_attempts = settings.mail_max_attempts
        self._trail = trail
        self._clock = clock
        self._signal = signal or OutboxSignal()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Deliver on the running loop until stopped."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        """Stop: a delivery under way may finish (bounded); an interrupted one is retried."""
        self._stopping.set()
        self._signal.queued()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.deliver_due()
            except StoreUnavailable:
                logger.warning("outbox not delivered: Postgres is unavailable")
            except Exception:
                # Logged and tried again: mail must not take a worker down.
                logger.exception("outbox delivery failed")
            if not self._stopping.is_set():
                await self._signal.wait(POLL_SECONDS)

    async def deliver_due(self) -> dict[Step, int]:
        """Attempt every message due now (unless another sender holds the lock); counts.

        Raises:
            StoreUnavailable: Postgres could not be reached.
        """
        counts = dict.fromkeys(Step, 0)
        while not self._stopping.is_set():
            step = await self.deliver_one()
            counts[step] += 1
            if step in (Step.IDLE, Step.ELSEWHERE):
                break
        return counts

    async def deliver_one(self) -> Step:
        """Attempt the oldest due message, in one transaction under the sender's lock.

        Raises:
            StoreUnavailable: Postgres could not be reached.
        """
        async with self._new_unit_of_work() as uow:
            if not await uow.locks.try_mail():
                return Step.ELSEWHERE
            row = await uow.outbox.next_due(self._clock())
            if row is None:
                OUTBOX_DEPTH.labels("waiting").set(await uow.outbox.depth())
                return Step.IDLE
            try:
                await self._transport.send(self._message(row), row)
            except DeliveryFailed as failure:
                await self._failed(uow, row, failure)
                await uow.commit()
                return Step.FAILED
            await uow.outbox.sent(row, self._clock(), keep_bodies=self._transport.keeps_bodies)
            await uow.commit()
        MAIL_SENT.labels(self._transport.name).inc()
        return Step.DELIVERED

    async def _failed(self, uow: UnitOfWork, row: OutboxMessage, failure: DeliveryFailed) -> None:
        now = self._clock()
        attempts = row.attempts + 1
        if not failure.permanent and attempts < self._max_attempts:
            await uow.outbox.retry_at(
                row, now + timedelta(seconds=retry_delay(attempts)), failure.reason
            )
            MAIL_FAILED.labels("retry").inc()
            logger.warning(
                "mail %s attempt %d failed (%s); retrying", row.id, attempts, failure.reason
            )
            return
        await uow.outbox.failed(row, now, failure.reason)
        MAIL_FAILED.labels("gave_up").inc()
        event = self._trail.event(
            EventType.MAIL_FAILED,
            user_id=row.user_id,
            details={"kind": row.kind, "attempts": attempts, "reason": failure.reason},
        )
        await uow.record(event)
        logger.error("mail %s given up after %d attempts (%s)", row.id, attempts, failure.reason)

    def _message(self, row: OutboxMessage) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = row.recipient
        message["Subject"] = row.subject
        message["Date"] = format_datetime(row.created_at)
        message["Message-ID"] = f"<{row.message_id}@{self._domain}>"
        message.set_content(row.text_body or "")
        message.add_alternative(row.html_body or "", subtype="html")
        return message
