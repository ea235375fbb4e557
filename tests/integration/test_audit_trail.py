"""The audit trail: the events of a scripted day, in order; what they never hold; their logs."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.edge.log_format import JsonLines
from tests.integration.admin_helpers import admin_token
from tests.integration.conftest import Harness, HarnessFactory, bearer

PASSWORD = "a long enough passphrase"


class SteppingClock:
    """Each reading a second later than the last; `advance` jumps ahead."""

    def __init__(self) -> None:
        # A past moment of its own: no other test's events (nor today's) share its minutes.
        self.now = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(
            days=secrets.randbelow(3650), seconds=secrets.randbelow(86400)
        )

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def _events(harness: Harness, token: str, **params: str) -> list[dict[str, Any]]:
    answer = await harness.client.get(
        "/admin/audit-events", params={"limit": "100", **params}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


async def test_a_scripted_day_leaves_exactly_its_events_in_order(
    make_harness: HarnessFactory,
) -> None:
    clock = SteppingClock()
    harness = await make_harness(clock=clock, refresh_reuse_grace=10)
    client = harness.client
    admin, admin_access = await admin_token(harness)

    user = await harness.register("day@example.com")
    phone = await harness.login("day@example.com", device_name="phone")
    laptop = await harness.login("day@example.com", device_name="laptop")
    refreshed = await client.post("/auth/refresh", headers=bearer(phone["refresh_token"]))
    assert refreshed.status_code == 200
    clock.advance(60)  # past the grace window
    reused = await client.post("/auth/refresh", headers=bearer(phone["refresh_token"]))
    assert reused.json()["code"] == "refresh_token_reused"
    assert (
        await client.post("/auth/logout-all", headers=bearer(laptop["access_token"]))
    ).status_code == 204
    disabled = await client.patch(
        f"/admin/users/{user['id']}", json={"disabled": True}, headers=bearer(admin_access)
    )
    assert disabled.status_code == 200

    events = list(reversed(await _events(harness, admin_access, user_id=user["id"])))
    summary = [(e["type"], e["session_id"]) for e in events]
    print(f"scripted day: {[e['type'] for e in events]}")
    assert summary == [
        ("user.registered", None),
        ("email.verification_sent", None),
        ("login.succeeded", phone["session_id"]),
        ("login.succeeded", laptop["session_id"]),
        ("token.refreshed", phone["session_id"]),
        ("refresh.reused", phone["session_id"]),
        ("sessions.logout_all", laptop["session_id"]),
        ("admin.user_updated", None),
    ]
    update = events[-1]
    assert update["actor_id"] == admin["id"]
    assert update["details"] == {
        "before": {"role": "user", "disabled": False},
        "after": {"role": "user", "disabled": True},
    }
    assert events[2]["details"] == {"device_name": "phone"}
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    # Never a token, password or hash.
    text = json.dumps(events)
    for secret in (PASSWORD, phone["access_token"], phone["refresh_token"], "$argon2"):
        assert secret not in text


async def test_failed_logins_record_the_reason_and_never_an_unknown_address(
    make_harness: HarnessFactory,
) -> None:
    clock = SteppingClock()
    harness = await make_harness(clock=clock)
    _, token = await admin_token(harness)
    user = await harness.register("known@example.com")
    since = clock.now.isoformat()
    for email, password in (
        ("known@example.com", "wrong password here"),
        ("Nobody@Example.com", "wrong password here"),
        ("nobody@example.com", "wrong password here"),
    ):
        answer = await harness.client.post(
            "/auth/login", json={"email": email, "password": password}
        )
        assert answer.status_code == 401
    until = (clock.now + timedelta(seconds=1)).isoformat()  # `until` is exclusive
    failed = list(
        reversed(await _events(harness, token, type="login.failed", since=since, until=until))
    )
    print(f"login.failed details: {[e['details'] for e in failed]}")
    assert failed[0]["user_id"] == user["id"]
    assert failed[0]["details"] == {"reason": "wrong_password"}
    unknown = failed[1:]
    assert [e["user_id"] for e in unknown] == [None, None]
    assert {e["details"]["reason"] for e in unknown} == {"unknown_email"}
    # The same address, however spelled, hashes alike; the address itself is nowhere.
    assert unknown[0]["details"]["email_hash"] == unknown[1]["details"]["email_hash"]
    assert "nobody" not in json.dumps(failed).lower()


async def test_events_are_filtered_by_type_and_time_and_paginated(
    make_harness: HarnessFactory,
) -> None:
    clock = SteppingClock()
    harness = await make_harness(clock=clock)
    _, token = await admin_token(harness)
    start = clock.now + timedelta(microseconds=1)
    for _ in range(5):
        await harness.login("admin@example.com")
    end = clock.now
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "type": "login.succeeded",
            "since": start.isoformat(),
            "until": end.isoformat(),
            "limit": "2",
        } | ({"cursor": cursor} if cursor else {})
        answer = await harness.client.get(
            "/admin/audit-events", params=params, headers=bearer(token)
        )
        body = answer.json()
        seen += [e["occurred_at"] for e in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # `until` is exclusive: the last login's moment is `end`.
    assert len(seen) == 4 and seen == sorted(seen, reverse=True)


async def test_the_verify_lane_and_the_guard_write_no_event(harness: Harness) -> None:
    _, token = await admin_token(harness)
    before = len(await _events(harness, token))
    for _ in range(3):
        await harness.client.get("/auth/verify", headers=bearer(token))
        await harness.client.get("/me", headers=bearer(token))
    assert len(await _events(harness, token)) == before


async def test_each_security_event_is_one_json_log_line_with_the_request_id(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.register("logged@example.com")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="api.audit"):
        answer = await harness.client.post(
            "/auth/login",
            json={"email": "logged@example.com", "password": PASSWORD},
            headers={"X-Request-ID": "client-chosen"},
        )
    records = [r for r in caplog.records if r.name == "api.audit"]
    assert [r.getMessage().split()[0] for r in records] == ["login.succeeded"]
    line = json.loads(JsonLines().format(records[0]))
    request_id = answer.headers["X-Request-ID"]
    print(f"login log line: {line}")
    # Not behind a trusted proxy: the client does not choose its request id.
    assert request_id != "client-chosen" and len(request_id) == 32
    assert line["event"]["request_id"] == request_id
    assert line["event"]["type"] == "login.succeeded"
    assert line["event"]["session_id"] == answer.json()["session_id"]
    assert answer.json()["access_token"] not in json.dumps(line)


async def test_a_login_and_its_refreshes_log_each_event_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.register("rotating@example.com")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="api.audit"):
        tokens = await harness.login("rotating@example.com")
        first = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
        # The superseded token again, within the grace window: the current link re-issued.
        again = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert first.status_code == again.status_code == 200
    records = [r for r in caplog.records if r.name == "api.audit"]
    lines = [json.loads(JsonLines().format(record))["event"] for record in records]
    assert [line["type"] for line in lines] == [
        "login.succeeded",
        "token.refreshed",
        "token.refreshed",
    ]
    assert {line["session_id"] for line in lines} == {tokens["session_id"]}
    assert [line["details"] for line in lines[1:]] == [{}, {"within_grace": True}]


async def test_a_trusted_proxy_names_the_request(make_harness: HarnessFactory) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    answer = await harness.client.get("/healthz", headers={"X-Request-ID": "edge-42.a"})
    assert answer.headers["X-Request-ID"] == "edge-42.a"
    odd = await harness.client.get("/healthz", headers={"X-Request-ID": "bad id\t"})
    assert odd.headers["X-Request-ID"] != "bad id\t"


async def test_token_failures_are_counted_by_code(harness: Harness) -> None:
    def count(metrics: str, code: str) -> float:
        for line in metrics.splitlines():
            if line.startswith(f'auth_api_token_failures_total{{code="{code}"}}'):
                return float(line.split()[-1])
        return 0.0

    before = (await harness.client.get("/metrics")).text
    await harness.client.get("/auth/verify", headers=bearer("not.a.token"))
    await harness.client.get("/me", headers=bearer("not.a.token"))
    after = (await harness.client.get("/metrics")).text
    assert count(after, "token_invalid") - count(before, "token_invalid") == 2
    assert "not.a.token" not in after
