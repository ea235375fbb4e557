"""Verification, forgotten password and email change, through a real SMTP server (aiosmtpd):
every message is delivered over SMTP, parsed, and its link's token used."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.config.settings import Settings
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    MovableClock,
    bearer,
    start_harness,
    stop_harness,
)
from tests.integration.mail_helpers import LINK_BASE, deliver, last_token, newest, with_empty_outbox
from tests.integration.problems import assert_problem
from tests.smtp_sink import SmtpSink, html_body, link_token, text_body

EMAIL = "recover@example.com"
PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture(name="make_harness")
def _make_harness(make_harness: HarnessFactory) -> HarnessFactory:
    return with_empty_outbox(make_harness)


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> SmtpSink:
    with smtp_server.lock:
        smtp_server.received.clear()
    smtp_server.refuse.clear()
    return smtp_server


@pytest.fixture
async def mail_harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness(public_link_base=LINK_BASE)


async def _events(harness: Harness, type_: str) -> list[Any]:
    """This test's events of `type_` (other runs' committed rows are left out)."""
    async with harness.resources.database.unit_of_work() as uow:
        rows = await uow.session.execute(
            text("SELECT user_id, details FROM audit_events WHERE type = :t AND occurred_at >= :s"),
            {"t": type_, "s": harness.started_at},
        )
        return list(rows)


async def _post(harness: Harness, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    answer = await harness.client.post(path, json=body, **kw)
    # A forgotten-password request's work runs after its answer, on the test's one connection.
    await harness.resources.services.recovery.settled()
    return answer


async def _me(harness: Harness, access: str) -> Any:
    response = await harness.client.get("/me", headers=bearer(access))
    assert response.status_code == 200, response.text
    return response.json()


# Verification


async def test_registration_sends_a_verification_link_whose_token_verifies_the_address(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    user = await mail_harness.register(EMAIL)
    tokens = await mail_harness.login(EMAIL)
    assert (await _me(mail_harness, tokens["access_token"]))["email_verified"] is False
    await deliver(mail_harness, smtp)
    message = newest(smtp, EMAIL)
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"].startswith("<") and message["From"]
    token = link_token(message)
    assert f"{LINK_BASE}#action=verify-email&token={token}" in text_body(message)
    assert f'href="{LINK_BASE}#action=verify-email&amp;token={token}"' in html_body(message)
    answer = await _post(mail_harness, "/auth/email/verify", {"token": token})
    assert answer.status_code == 204, answer.text
    assert (await _me(mail_harness, tokens["access_token"]))["email_verified"] is True
    sent = await _events(mail_harness, "email.verification_sent")
    verified = await _events(mail_harness, "email.verified")
    assert [str(r.user_id) for r in verified] == [user["id"]] and len(sent) == 1
    assert token not in str([r.details for r in sent + verified])


async def test_a_delivered_message_keeps_no_body_in_the_outbox(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    token = await last_token(mail_harness, smtp, EMAIL)
    async with mail_harness.resources.database.unit_of_work() as uow:
        rows = list(
            await uow.session.execute(
                text("SELECT * FROM outbox WHERE recipient = :r"), {"r": EMAIL}
            )
        )
        tokens = list(await uow.session.execute(text("SELECT token_hash FROM message_tokens")))
    assert len(rows) == 1 and rows[0].sent_at is not None and rows[0].text_body is None
    assert all(token.encode() not in bytes(r.token_hash) for r in tokens)


async def test_verify_request_sends_a_new_link_and_supersedes_the_old_one(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    access = (await mail_harness.login(EMAIL))["access_token"]
    first = await last_token(mail_harness, smtp, EMAIL)
    answer = await _post(mail_harness, "/auth/email/verify-request", {}, headers=bearer(access))
    assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    second = await last_token(mail_harness, smtp, EMAIL)
    assert second != first
    old = await _post(mail_harness, "/auth/email/verify", {"token": first})
    assert_problem(old, 400, "link_invalid")
    assert (await _post(mail_harness, "/auth/email/verify", {"token": second})).status_code == 204
    # Verified: asking again sends nothing.
    again = await _post(mail_harness, "/auth/email/verify-request", {}, headers=bearer(access))
    assert again.status_code == 202
    await deliver(mail_harness, smtp)
    assert len(smtp.to(EMAIL)) == 2


async def test_verify_request_needs_a_token_and_is_rate_limited(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    harness = await make_harness(rate_limits_enabled=True, account_mail_limit="2/hour")
    await harness.register(EMAIL)
    access = (await harness.login(EMAIL))["access_token"]
    assert_problem(await _post(harness, "/auth/email/verify-request", {}), 401, "token_missing")
    for _ in range(2):
        ok = await _post(harness, "/auth/email/verify-request", {}, headers=bearer(access))
        assert ok.status_code == 202
    limited = await _post(harness, "/auth/email/verify-request", {}, headers=bearer(access))
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"]


async def test_login_of_an_unverified_account_is_refused_when_verification_is_required(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    harness = await make_harness(require_verified_email=True)
    await harness.register(EMAIL)
    wrong = await _post(harness, "/auth/login", {"email": EMAIL, "password": "not the password"})
    assert_problem(wrong, 401, "invalid_credentials")
    unverified = await _post(harness, "/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert_problem(unverified, 403, "email_unverified")
    token = await last_token(harness, smtp, EMAIL)
    assert (await _post(harness, "/auth/email/verify", {"token": token})).status_code == 204
    await harness.login(EMAIL)


# Every way a link is invalid


async def test_every_invalid_link_is_link_invalid(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock)
    await harness.register(EMAIL)
    verify_token = await last_token(harness, smtp, EMAIL)
    await _post(harness, "/auth/password/forgot", {"email": EMAIL})
    reset_token = await last_token(harness, smtp, EMAIL)
    cases = {
        "unknown": ("/auth/email/verify", {"token": "A" * 43}),
        "malformed": ("/auth/email/verify", {"token": "not a token"}),
        "empty": ("/auth/email/verify", {"token": ""}),
        "huge": ("/auth/email/verify", {"token": "x" * 5000}),
        "NUL": ("/auth/email/verify", {"token": "\x00" * 43}),
        "reset token to verify": ("/auth/email/verify", {"token": reset_token}),
        "verify token to reset": (
            "/auth/password/reset",
            {"token": verify_token, "new_password": NEW_PASSWORD},
        ),
        "verify token to confirm-change": ("/auth/email/confirm-change", {"token": verify_token}),
        "reset token to confirm-change": ("/auth/email/confirm-change", {"token": reset_token}),
    }
    for name, (path, body) in cases.items():
        response = await _post(harness, path, body)
        assert response.status_code == 400, (name, response.text)
        assert response.json()["code"] == "link_invalid", name
    # A wrong-purpose attempt did not use the token up.
    assert (await _post(harness, "/auth/email/verify", {"token": verify_token})).status_code == 204
    used = await _post(harness, "/auth/email/verify", {"token": verify_token})
    assert_problem(used, 400, "link_invalid")
    # Expired: the reset link lives PASSWORD_RESET_TTL.
    clock.advance(harness.resources.settings.password_reset_ttl + 1)
    expired = await _post(
        harness, "/auth/password/reset", {"token": reset_token, "new_password": NEW_PASSWORD}
    )
    assert_problem(expired, 400, "link_invalid")


async def test_an_expired_verification_link_is_link_invalid(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock)
    await harness.register(EMAIL)
    token = await last_token(harness, smtp, EMAIL)
    clock.advance(harness.resources.settings.email_verify_ttl + 1)
    assert_problem(
        await _post(harness, "/auth/email/verify", {"token": token}), 400, "link_invalid"
    )


async def test_a_reset_link_dies_when_the_password_changes_by_another_route(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    access = (await mail_harness.login(EMAIL))["access_token"]
    await _post(mail_harness, "/auth/password/forgot", {"email": EMAIL})
    token = await last_token(mail_harness, smtp, EMAIL)
    changed = await _post(
        mail_harness,
        "/me/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(access),
    )
    assert changed.status_code == 204
    late = await _post(
        mail_harness,
        "/auth/password/reset",
        {"token": token, "new_password": "yet another passphrase"},
    )
    assert_problem(late, 400, "link_invalid")
    await mail_harness.login(EMAIL, NEW_PASSWORD)


async def test_request_bodies_of_the_link_routes_are_validated(mail_harness: Harness) -> None:
    for path in ("/auth/email/verify", "/auth/email/confirm-change", "/auth/password/reset"):
        assert_problem(await _post(mail_harness, path, {}), 422, "validation_error")
        assert_problem(await _post(mail_harness, path, {"token": 7}), 422, "validation_error")
        raw = await mail_harness.client.post(
            path, content=b"[1]", headers={"Content-Type": "application/json"}
        )
        assert_problem(raw, 400, "malformed_json")
        plain = await mail_harness.client.post(
            path, content=b"token", headers={"Content-Type": "text/plain"}
        )
        assert_problem(plain, 415, "unsupported_media_type")
    for body in ({}, {"email": "not an address"}, {"email": 3}):
        answer = await _post(mail_harness, "/auth/password/forgot", body)
        assert_problem(answer, 422, "validation_error")


# Forgotten password


async def test_forgot_then_reset_revokes_everything_and_only_the_new_password_works(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    verify_token = await last_token(mail_harness, smtp, EMAIL)
    devices = [await mail_harness.login(EMAIL) for _ in range(2)]
    answer = await _post(mail_harness, "/auth/password/forgot", {"email": EMAIL.upper()})
    assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    message = (await deliver(mail_harness, smtp), newest(smtp, EMAIL))[1]
    assert message["Subject"] == "Reset your password"
    token = link_token(message)
    assert f"#action=reset-password&token={token}" in text_body(message)
    weak = await _post(
        mail_harness, "/auth/password/reset", {"token": token, "new_password": "short"}
    )
    assert_problem(weak, 422, "validation_error")
    reset = await _post(
        mail_harness, "/auth/password/reset", {"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    for device in devices:
        access, refresh = device["access_token"], device["refresh_token"]
        for response in (
            await mail_harness.client.get("/auth/verify", headers=bearer(access)),
            await mail_harness.client.get("/me", headers=bearer(access)),
            await mail_harness.client.get("/auth/sessions", headers=bearer(access)),
            await mail_harness.client.post("/auth/refresh", headers=bearer(refresh)),
            await mail_harness.client.post("/auth/refresh", json={"refresh_token": refresh}),
        ):
            assert_problem(response, 401, "token_revoked")
    again = await _post(
        mail_harness,
        "/auth/password/reset",
        {"token": token, "new_password": "another passphrase!"},
    )
    assert_problem(again, 400, "link_invalid")
    old = await _post(mail_harness, "/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    fresh = await mail_harness.login(EMAIL, NEW_PASSWORD)
    assert (await _me(mail_harness, fresh["access_token"]))["email_verified"] is True
    # The verification link, sent before the reset, has nothing left to do but is harmless.
    assert (
        await _post(mail_harness, "/auth/email/verify", {"token": verify_token})
    ).status_code == 204
    assert len(await _events(mail_harness, "password.reset_requested")) == 1
    assert len(await _events(mail_harness, "password.reset")) == 1


async def test_forgot_for_an_unknown_address_answers_the_same_and_sends_nothing(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    answer = await _post(mail_harness, "/auth/password/forgot", {"email": "nobody@example.com"})
    assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    counts = await deliver(mail_harness, smtp)
    assert smtp.to("nobody@example.com") == [] and sum(counts.values()) == 1
    [event] = await _events(mail_harness, "password.reset_requested")
    assert event.user_id is None and event.details["account"] == "none"
    assert "nobody" not in str(event.details)


async def test_forgot_is_limited_per_address_and_per_ip(
    make_harness: HarnessFactory, smtp: SmtpSink
) -> None:
    harness = await make_harness(
        rate_limits_enabled=True,
        forgot_password_email_limit="2/hour",
        forgot_password_ip_limit="5/hour",
    )
    for _ in range(2):
        assert (await _post(harness, "/auth/password/forgot", {"email": EMAIL})).status_code == 202
    limited = await _post(harness, "/auth/password/forgot", {"email": EMAIL.upper()})
    assert_problem(limited, 429, "rate_limited")
    for n in range(2):
        other = await _post(harness, "/auth/password/forgot", {"email": f"o{n}@example.com"})
        assert other.status_code == 202
    by_ip = await _post(harness, "/auth/password/forgot", {"email": "o9@example.com"})
    assert_problem(by_ip, 429, "rate_limited")


async def test_forgot_takes_the_same_time_for_known_and_unknown_addresses(
    settings: Settings,
) -> None:
    """Medians printed for the report (never asserted: timing on a shared machine)."""
    _, harness = await start_harness(settings)
    email = "timing@example.com"
    try:
        await harness.register(email)
        rounds = 100
        known: list[float] = []
        unknown: list[float] = []
        for n in range(rounds):
            for address, samples in ((email, known), (f"nobody{n}@example.com", unknown)):
                started = time.perf_counter()
                answer = await harness.client.post("/auth/password/forgot", json={"email": address})
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 202
                # The account's work runs after the answer; let it finish before the next one.
                await harness.resources.services.recovery.settled()
        print(
            f"\nforgot medians over {rounds}: known {statistics.median(known) * 1000:.2f} ms, "
            f"unknown {statistics.median(unknown) * 1000:.2f} ms"
        )
    finally:
        async with harness.resources.database.unit_of_work() as uow:
            await uow.session.execute(
                text("DELETE FROM outbox WHERE created_at >= :t"), {"t": harness.started_at}
            )
            await uow.commit()
        await stop_harness(harness, email)


# Email change


async def _change(
    harness: Harness, access: str, new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await _post(
        harness, "/me/email", {"new_email": new_email, "password": password}, headers=bearer(access)
    )


async def test_email_change_confirms_to_the_new_address_and_tells_the_old_one(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    tokens = await mail_harness.login(EMAIL)
    answer = await _change(mail_harness, tokens["access_token"], " New.Address@example.com ")
    assert answer.status_code == 202 and answer.json() == {"status": "accepted"}
    await deliver(mail_harness, smtp)
    confirmation = newest(smtp, "New.Address@example.com")
    notice = newest(smtp, EMAIL)
    assert notice["Subject"] == "Your account's email address is being changed"
    assert "New.Address@example.com" in text_body(notice) and "token=" not in text_body(notice)
    token = link_token(confirmation)
    assert "#action=confirm-email-change&token=" in text_body(confirmation)
    confirmed = await _post(mail_harness, "/auth/email/confirm-change", {"token": token})
    assert confirmed.status_code == 204, confirmed.text
    me = await _me(mail_harness, tokens["access_token"])
    assert me["email"] == "New.Address@example.com" and me["email_verified"] is True
    await mail_harness.login("new.address@example.com")
    old = await _post(mail_harness, "/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    assert_problem(
        await _post(mail_harness, "/auth/email/confirm-change", {"token": token}),
        400,
        "link_invalid",
    )
    assert len(await _events(mail_harness, "email.change_requested")) == 1
    assert len(await _events(mail_harness, "email.changed")) == 1


async def test_links_sent_to_the_old_address_die_with_an_email_change(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    access = (await mail_harness.login(EMAIL))["access_token"]
    verify_token = await last_token(mail_harness, smtp, EMAIL)
    await _post(mail_harness, "/auth/password/forgot", {"email": EMAIL})
    reset_token = await last_token(mail_harness, smtp, EMAIL)
    assert (await _change(mail_harness, access, "moved@example.com")).status_code == 202
    change_token = await last_token(mail_harness, smtp, "moved@example.com")
    assert (
        await _post(mail_harness, "/auth/email/confirm-change", {"token": change_token})
    ).status_code == 204
    assert_problem(
        await _post(mail_harness, "/auth/email/verify", {"token": verify_token}),
        400,
        "link_invalid",
    )
    stale = await _post(
        mail_harness, "/auth/password/reset", {"token": reset_token, "new_password": NEW_PASSWORD}
    )
    assert_problem(stale, 400, "link_invalid")


async def test_email_change_to_an_address_taken_meanwhile_is_email_taken(
    mail_harness: Harness, smtp: SmtpSink
) -> None:
    await mail_harness.register(EMAIL)
    access = (await mail_harness.login(EMAIL))["access_token"]
    assert (await _change(mail_harness, access, "wanted@example.com")).status_code == 202
    token = await last_token(mail_harness, smtp, "wanted@example.com")
    await mail_harness.register("WANTED@example.com")
    taken = await _post(mail_harness, "/auth/email/confirm-change", {"token": token})
    assert_problem(taken, 409, "email_taken")
    assert (await _me(mail_harness, access))["email"] == EMAIL


async def test_every_error_of_the_email_change_request(mail_harness: Harness) -> None:
    await mail_harness.register(EMAIL)
    await mail_harness.register("other@example.com")
    tokens = await mail_harness.login(EMAIL)
    access = tokens["access_token"]
    assert_problem(
        await _post(
            mail_harness, "/me/email", {"new_email": "x@example.com", "password": PASSWORD}
        ),
        401,
        "token_missing",
    )
    refreshed = await mail_harness.client.post(
        "/auth/refresh", headers=bearer(tokens["refresh_token"])
    )
    stale = await _change(mail_harness, refreshed.json()["access_token"], "x@example.com")
    assert_problem(stale, 401, "fresh_token_required")
    assert_problem(
        await _change(mail_harness, access, "x@example.com", "wrong password!"),
        401,
        "invalid_credentials",
    )
    assert_problem(await _change(mail_harness, access, "Other@Example.com"), 409, "email_taken")
    for bad in ("not an address", EMAIL.upper()):
        assert_problem(await _change(mail_harness, access, bad), 422, "validation_error")
    missing = await _post(
        mail_harness, "/me/email", {"new_email": "x@example.com"}, headers=bearer(access)
    )
    assert_problem(missing, 422, "validation_error")


# Races


async def test_twenty_concurrent_uses_of_one_token_succeed_exactly_once(
    settings: Settings, smtp: SmtpSink
) -> None:
    """Each route that takes a link's token, with its own connections (no test transaction)."""
    _, harness = await start_harness(replace(settings, public_link_base=LINK_BASE))
    emails = ["race-reset@example.com", "race-verify@example.com", "race-change@example.com"]
    try:
        await harness.register(emails[0])
        await _post(harness, "/auth/password/forgot", {"email": emails[0]})
        reset = await last_token(harness, smtp, emails[0])
        await harness.register(emails[1])
        verify = await last_token(harness, smtp, emails[1])
        access = (await harness.login(emails[1]))["access_token"]
        assert (await _change(harness, access, emails[2])).status_code == 202
        change = await last_token(harness, smtp, emails[2])
        uses = {
            "reset": ("/auth/password/reset", {"token": reset, "new_password": NEW_PASSWORD}),
            "verify": ("/auth/email/verify", {"token": verify}),
            "confirm-change": ("/auth/email/confirm-change", {"token": change}),
        }
        for name, (path, body) in uses.items():
            answers = await asyncio.gather(*(_post(harness, path, body) for _ in range(20)))
            statuses = sorted(a.status_code for a in answers)
            print(
                f"\n20 concurrent uses of one {name} token: {statuses.count(204)} x 204, "
                f"{statuses.count(400)} x 400 link_invalid"
            )
            assert statuses == [204] + [400] * 19, (name, statuses)
    finally:
        async with harness.resources.database.unit_of_work() as uow:
            await uow.session.execute(
                text("DELETE FROM outbox WHERE created_at >= :t"), {"t": harness.started_at}
            )
            await uow.commit()
        await stop_harness(harness, *emails)


@pytest.mark.parametrize("times", [2, 10])
async def test_forgot_limits_at_2x_and_10x_hold_for_the_flooder_and_spare_another_address(
    settings: Settings, times: int
) -> None:
    """`times` x the per-IP limit at once from one address, `times` x the per-address limit
    at once for one victim's address from many: the limits hold exactly, and a user on
    another address asking for their own reset meanwhile is answered 202. Writes commit
    (requests run at once), and are deleted after."""
    per_ip, per_address = 5, 2
    limited = replace(
        settings,
        rate_limits_enabled=True,
        trusted_proxy_hops=1,
        forgot_password_ip_limit=f"{per_ip}/hour",
        forgot_password_email_limit=f"{per_address}/hour",
    )
    _, harness = await start_harness(limited)
    bystander_email = f"bystander-{uuid.uuid4().hex[:8]}@example.com"
    try:
        async with harness.client:
            await harness.register(bystander_email)

            def sent_from(ip: str, email: str) -> Any:
                return harness.client.post(
                    "/auth/password/forgot", json={"email": email}, headers={"X-Forwarded-For": ip}
                )

            flood = [sent_from("203.0.113.9", f"f{n}@example.com") for n in range(times * per_ip)]
            victim = [
                sent_from(f"198.51.100.{n}", "victim@example.com")
                for n in range(times * per_address)
            ]
            answers = await asyncio.gather(*flood, *victim, sent_from("192.0.2.1", bystander_email))
            await harness.resources.services.recovery.settled()
    finally:
        await stop_harness(harness, bystander_email)
    flood_codes = [a.status_code for a in answers[: len(flood)]]
    victim_codes = [a.status_code for a in answers[len(flood) : -1]]
    bystander = answers[-1].status_code
    print(f"\n{times}x: one address {len(flood)} at once: {flood_codes.count(202)} x 202, "
          f"{flood_codes.count(429)} x 429; one victim's address from {len(victim)} addresses: "
          f"{victim_codes.count(202)} x 202, {victim_codes.count(429)} x 429; "
          f"another user on another address: {bystander}")  # fmt: skip
    assert sorted(flood_codes) == [202] * per_ip + [429] * (len(flood) - per_ip)
    assert sorted(victim_codes) == [202] * per_address + [429] * (len(victim) - per_address)
    assert bystander == 202
