"""Delivering a harness's outbox to a real SMTP server, and reading what arrived."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from sqlalchemy import text

from api.account.mailer import OutboxSender, SmtpTransport, Step
from api.domain.audit import AuditTrail
from api.domain.clock import Clock, utc_now
from tests.integration.conftest import Harness, HarnessFactory
from tests.smtp_sink import SmtpSink, link_token

LINK_BASE = "https://app.example.com/account"


def with_empty_outbox(make_harness: HarnessFactory) -> HarnessFactory:
    """Harnesses whose transaction starts by emptying the outbox (rolled back with it), so a
    sender sees this test's messages only, not what other runs left committed."""

    async def make(**overrides: Any) -> Harness:
        harness = await make_harness(**overrides)
        async with harness.resources.database.unit_of_work() as uow:
            await uow.session.execute(text("DELETE FROM outbox"))
            await uow.commit()
        return harness

    return make


def sender_for(harness: Harness, smtp_url: str, clock: Clock = utc_now) -> OutboxSender:
    """A sender over the harness's database (its transaction) to `smtp_url`."""
    resources = harness.resources
    trail = AuditTrail(resources.keys.secret_material(), clock)
    return OutboxSender(
        resources.database.unit_of_work,
        SmtpTransport(smtp_url, timeout=5),
        resources.settings,
        trail,
        clock,
    )


async def deliver(harness: Harness, sink: SmtpSink, clock: Clock = utc_now) -> dict[Step, int]:
    """Deliver everything due in the harness's outbox to `sink` (once answered requests'
    work is done)."""
    await harness.resources.services.recovery.settled()
    return await sender_for(harness, sink.url, clock).deliver_due()


async def last_token(harness: Harness, sink: SmtpSink, address: str) -> str:
    """Deliver the outbox, then the token of the newest message to `address`."""
    await deliver(harness, sink)
    return link_token(newest(sink, address))


def newest(sink: SmtpSink, address: str) -> EmailMessage:
    """The newest message to `address`."""
    messages = sink.to(address)
    assert messages, f"no message to {address}"
    return messages[-1]
