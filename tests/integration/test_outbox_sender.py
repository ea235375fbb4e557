"""The outbox sender against a real SMTP server: retries with backoff while it is down, gives
a message up after MAIL_MAX_ATTEMPTS or a permanent refusal (mail.failed), one sender at once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.account.mailer import Step, retry_delay
from api.config.settings import Settings
from tests.conftest import ROOT
from tests.e2e.server import settings_env
from tests.integration.conftest import HarnessFactory, MovableClock
from tests.integration.mail_helpers import deliver, sender_for, with_empty_outbox
from tests.smtp_sink import SmtpSink


@pytest.fixture(name="make_harness")
def _make_harness(make_harness: HarnessFactory) -> HarnessFactory:
    return with_empty_outbox(make_harness)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


async def test_a_message_waits_out_an_smtp_outage_and_is_delivered_once(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock)
    await harness.register("outage@example.com")
    smtp.stop()
    down = sender_for(harness, smtp.url, clock)
    failed = await down.deliver_due()
    assert failed[Step.FAILED] == 1 and failed[Step.DELIVERED] == 0
    # Not due again before its backoff.
    assert (await down.deliver_due())[Step.IDLE] == 1
    for attempt in range(2, 5):
        clock.advance(retry_delay(attempt - 1))
        assert (await down.deliver_due())[Step.FAILED] == 1
    smtp.start()
    clock.advance(retry_delay(4))
    assert (await deliver(harness, smtp, clock))[Step.DELIVERED] == 1
    clock.advance(3600)
    assert (await deliver(harness, smtp, clock))[Step.DELIVERED] == 0
    assert len(smtp.to("outage@example.com")) == 1
    async with harness.resources.database.unit_of_work() as uow:
        row = (
            await uow.session.execute(
                text("SELECT attempts, sent_at FROM outbox WHERE recipient = 'outage@example.com'")
            )
        ).one()
    assert row.attempts == 5 and row.sent_at is not None


async def test_a_permanent_refusal_gives_the_message_up_with_mail_failed(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    harness = await make_harness()
    user = await harness.register("refused@example.com")
    smtp.refuse.add("refused@example.com")
    counts = await deliver(harness, smtp)
    assert counts[Step.FAILED] == 1
    async with harness.resources.database.unit_of_work() as uow:
        row = (
            await uow.session.execute(
                text("SELECT * FROM outbox WHERE recipient = 'refused@example.com'")
            )
        ).one()
        events = list(
            await uow.session.execute(
                text(
                    "SELECT user_id, details FROM audit_events "
                    "WHERE type = 'mail.failed' AND user_id = :u"
                ),
                {"u": user["id"]},
            )
        )
    assert row.failed_at is not None and row.text_body is None and "550" in row.last_error
    assert [str(e.user_id) for e in events] == [user["id"]]
    assert events[0].details["kind"] == "verify_email"


async def test_after_mail_max_attempts_the_message_is_given_up(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock, mail_max_attempts=2)
    await harness.register("never@example.com")
    smtp.stop()
    sender = sender_for(harness, smtp.url, clock)
    await sender.deliver_due()
    clock.advance(retry_delay(1))
    await sender.deliver_due()
    clock.advance(3600)
    assert (await sender.deliver_due())[Step.IDLE] == 1
    async with harness.resources.database.unit_of_work() as uow:
        failed = await uow.session.scalar(
            text(
                "SELECT count(*) FROM audit_events WHERE type = 'mail.failed' AND occurred_at >= :s"
            ),
            {"s": harness.started_at},
        )
    assert failed == 1
    smtp.start()


async def test_a_second_sender_leaves_the_outbox_to_the_lock_holder(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    harness = await make_harness()
    await harness.register("locked@example.com")
    key = {"key": int.from_bytes(b"authmail")}
    engine = create_async_engine(harness.resources.settings.database_url, poolclass=NullPool)
    try:
        # Another sender's lock, held by another connection.
        async with engine.connect() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(:key)"), key)
            assert (await deliver(harness, smtp))[Step.ELSEWHERE] == 1
            await holder.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        await engine.dispose()
    assert (await deliver(harness, smtp))[Step.DELIVERED] == 1


async def test_send_mail_exits_non_zero_with_one_line_when_postgres_is_unreachable(
    settings: Settings,
) -> None:
    parts = urlsplit(settings.database_url)
    unreachable = urlunsplit(parts._replace(netloc="postgres@127.0.0.1:1"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flask",
        "--app",
        "api",
        "send-mail",
        cwd=ROOT,
        env={**os.environ, **settings_env(settings), "DATABASE_URL": unreachable},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode != 0
    assert out == b""
    assert err.decode().count("\n") == 1, err
    assert "Postgres is unreachable at 127.0.0.1:1" in err.decode()
    assert "nothing was sent" in err.decode()
    print(f"flask send-mail, Postgres unreachable: exit {process.returncode}, {err!r}")
