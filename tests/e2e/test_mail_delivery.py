"""Mail end to end: the real 2-worker server delivers its outbox (one sender under the
advisory lock) to `python -m aiosmtpd` running as its own process, through an outage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import PASSWORD, Users
from tests.e2e.server import ROOT, Server, settings_env
from tests.e2e.smtp_process import SmtpProcess
from tests.e2e.test_revocation_races import _refresh, _survivors
from tests.smtp_sink import link_token

pytestmark = pytest.mark.e2e

LINK_BASE = "https://app.example.com/account"
# The outage: the SMTP server is away this long while messages are queued.
OUTAGE_SECONDS = 30
NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture(scope="module")
def mail_settings(e2e_settings: Settings, smtp: SmtpProcess) -> Settings:
    return replace(
        e2e_settings, smtp_url=smtp.url, mail_send_in_workers=True, public_link_base=LINK_BASE
    )


@pytest.fixture(scope="module")
def mail_server(mail_settings: Settings) -> Iterator[Server]:
    server = Server(settings_env(mail_settings), workers=2)
    yield server
    server.stop()


@pytest.fixture
async def client(mail_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mail_server.url, timeout=30) as http:
        yield http


async def _arrived(
    smtp: SmtpProcess, address: str, subject: str = "Confirm your email address"
) -> str:
    """The token of the message to `address` with `subject`, once it arrived."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = [m for m in smtp.to(address) if m["Subject"] == subject]
        if messages:
            return link_token(messages[-1])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {subject!r} message to {address} within 20 s")


RESET = "Reset your password"


async def test_a_registration_message_arrives_and_its_link_verifies(
    client: httpx.AsyncClient, smtp: SmtpProcess, users: Users
) -> None:
    email = await users.register(client)
    token = await _arrived(smtp, email)
    assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 204
    tokens = await users.login(client, email)
    me = await client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email_verified"] is True


async def test_twenty_concurrent_uses_of_one_reset_token_give_one_204(
    client: httpx.AsyncClient, smtp: SmtpProcess, users: Users
) -> None:
    email = await users.register(client)
    await _arrived(smtp, email)
    assert (await client.post("/auth/password/forgot", json={"email": email})).status_code == 202
    token = await _arrived(smtp, email, RESET)
    answers = await asyncio.gather(
        *(
            client.post("/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
            for _ in range(20)
        )
    )
    statuses = Counter(a.status_code for a in answers)
    print(f"\ne2e: 20 concurrent uses of one reset token: {dict(statuses)}")
    assert statuses == {204: 1, 400: 19}


async def test_a_reset_racing_refreshes_leaves_no_token_alive(
    client: httpx.AsyncClient, smtp: SmtpProcess, users: Users
) -> None:
    """The logout-all race test, with a password reset as the operation."""
    returned_total = survivors = 0
    for _ in range(8):
        email = await users.register(client)
        sessions = [await users.login(client, email) for _ in range(3)]
        await client.post("/auth/password/forgot", json={"email": email})
        token = await _arrived(smtp, email, RESET)
        *refreshes, answer = await asyncio.gather(
            *(_refresh(client, s["refresh_token"]) for s in sessions for _ in range(2)),
            client.post(
                "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
            ),
        )
        assert answer.status_code == 204, answer.text
        returned = [r.json() for r in refreshes if r.status_code == 200]
        returned_total += len(returned)
        survivors += await _survivors(client, [*sessions, *returned])
    print(f"\nreset racing refreshes: {returned_total} tokens returned, {survivors} survived")
    assert survivors == 0


@pytest.mark.timeout(300)
async def test_an_smtp_outage_loses_and_doubles_no_message(
    client: httpx.AsyncClient, smtp: SmtpProcess, users: Users, database_url: str
) -> None:
    smtp.stop()
    try:
        emails = [await users.register(client) for _ in range(10)]
        for email in emails[:5]:
            assert (
                await client.post("/auth/password/forgot", json={"email": email})
            ).status_code == 202
        queued_at = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
    finally:
        smtp.start()
    expected = len(emails) + 5
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if sum(len(smtp.to(e)) for e in emails) >= expected:
            break
        await asyncio.sleep(0.5)
    delivered_after = time.monotonic() - queued_at - OUTAGE_SECONDS
    # Time for any repeat to show up.
    await asyncio.sleep(3)
    received = [m for e in emails for m in smtp.to(e)]
    ids = Counter(m["Message-ID"] for m in received)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT message_id, attempts, sent_at FROM outbox WHERE recipient = ANY($1::text[])",
            emails,
        )
    finally:
        await conn.close()
    lost = expected - len(ids)
    duplicated = sum(n - 1 for n in ids.values())
    print(
        f"\nSMTP down {OUTAGE_SECONDS} s: queued {expected}, delivered {len(ids)} distinct "
        f"({len(received)} in all), lost {lost}, duplicated {duplicated}; all delivered "
        f"{delivered_after:.1f} s after the server returned; attempts per message "
        f"{sorted(Counter(r['attempts'] for r in rows).items())}"
    )
    assert lost == 0 and duplicated == 0
    assert len(rows) == expected and all(r["sent_at"] is not None for r in rows)


def test_send_mail_command_delivers_the_outbox(
    mail_settings: Settings, smtp: SmtpProcess, users: Users, server: Server
) -> None:
    """`flask --app api send-mail`, against a server whose workers leave mail alone."""

    async def register() -> str:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            return await users.register(http)

    email = asyncio.run(register())
    env = {
        **os.environ,
        **settings_env(replace(mail_settings, mail_send_in_workers=False)),
    }
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "api", "send-mail"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "delivered" in done.stdout
    # The module's server may have delivered it first: either way, exactly once.
    deadline = time.monotonic() + 20
    while not smtp.to(email) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(smtp.to(email)) == 1
    assert Path(smtp.maildir).exists()
    assert PASSWORD
