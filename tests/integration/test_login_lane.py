"""POST /auth/login answered by the lane (api.auth.login_lane) and by the Flask view: the
same logins sent through the bridge with its lanes and through one without, on one worker
runtime, get the same status, the same headers in the same order and the same body, but
for what every login makes anew (tokens, session id, device token, mfa_token), whatever
the outcome: success, every refusal, a store down. Logins the lane leaves (cookies, bodies
the view refuses) reach the view. The lane records the same origin on the session and on
the audit event as the view."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from api.auth.login_lane import LoginLane
from api.config.settings import Settings
from db.models import AuditEvent, User
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    bearer,
    start_harness,
    without_lanes,
)
from tests.integration.mfa_helpers import PASSWORD, enrolled_user
from tests.integration.test_unavailable import CLOSED_POSTGRES, CLOSED_REDIS

Answer = tuple[int, list[tuple[bytes, bytes]], Any]
# What every login makes anew, compared by presence only.
FRESH = {"access_token", "refresh_token", "session_id", "device_token", "mfa_token"}
DEVICE = {"User-Agent": "lane-test/1.0", "X-Forwarded-For": "203.0.113.9"}


async def _answer(
    client: httpx.AsyncClient, content: bytes, headers: list[tuple[str, str]]
) -> Answer:
    request_id = f"same-{uuid.uuid4().hex[:8]}"
    sent = httpx.Headers([*headers, ("X-Request-ID", request_id)])
    response = await client.post("/auth/login", content=content, headers=sent)
    assert response.headers["x-request-id"] == request_id
    raw = [
        (name, b"N" if name in (b"x-request-id", b"content-length") else value)
        for name, value in response.headers.raw
    ]
    # A cookie login's cookies carry fresh tokens: their names and attributes are compared.
    raw = [
        (name, re.sub(rb"=[^;]*", b"=FRESH", value, count=1) if name == b"set-cookie" else value)
        for name, value in raw
    ]
    body = response.content.replace(request_id.encode(), b"ID")
    try:
        parsed = json.loads(body)
    except ValueError:
        return response.status_code, raw, body
    if isinstance(parsed, dict):
        parsed = {k: ("FRESH" if k in FRESH and v else v) for k, v in parsed.items()}
    return response.status_code, raw, parsed


async def both_answers(
    harness: Harness, flask: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
) -> tuple[Answer, Answer]:
    """The lane's answer and the view's to the same login (a JSON body, or raw bytes)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = [("Content-Type", "application/json"), *DEVICE.items(), *(headers or {}).items()]
    return await _answer(harness.client, content, sent), await _answer(flask, content, sent)


def _login(email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"email": email, "password": password, **extra}


async def test_lane_and_view_answer_every_outcome_alike(make_harness: HarnessFactory) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    await harness.register("owner@example.com", PASSWORD)
    await harness.register("disabled@example.com", PASSWORD)
    assert harness.bind is not None
    await harness.bind.execute(
        update(User).where(User.email == "disabled@example.com").values(disabled=True)
    )
    await enrolled_user(harness, "second-factor@example.com")
    device_token = (await harness.login("owner@example.com", PASSWORD))["device_token"]
    cases: dict[str, tuple[dict[str, Any], int]] = {
        "success": (_login("owner@example.com"), 200),
        "success, device name": (_login("owner@example.com", device_name="Pixel 9"), 200),
        "success, own device token": (_login("owner@example.com", device_token=device_token), 200),
        "success, someone else's device token": (
            _login("owner@example.com", device_token="not-a-device-token"),
            200,
        ),
        "success, email spelt otherwise": (_login("  OWNER@Example.com "), 200),
        "success, empty device token": (_login("owner@example.com", device_token=""), 200),
        "wrong password": (_login("owner@example.com", "not the password"), 401),
        "unknown email": (_login("nobody@example.com"), 401),
        "disabled": (_login("disabled@example.com"), 403),
        "second factor": (_login("second-factor@example.com"), 401),
    }
    async with without_lanes(harness) as flask:
        for case, (body, status) in cases.items():
            lane, view = await both_answers(harness, flask, body)
            assert lane == view, case
            assert lane[0] == status, (case, lane)


async def test_lane_and_view_refuse_an_unverified_address_alike(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(trusted_proxy_hops=1, require_verified_email=True)
    await harness.register("unverified@example.com", PASSWORD)
    async with without_lanes(harness) as flask:
        lane, view = await both_answers(harness, flask, _login("unverified@example.com"))
    assert lane == view
    assert lane[0] == 403
    assert lane[2]["code"] == "email_unverified"


async def test_lane_and_view_hold_the_per_ip_limit_alike(make_harness: HarnessFactory) -> None:
    harness = await make_harness(
        trusted_proxy_hops=1, rate_limits_enabled=True, login_rate_limit="2/minute"
    )
    await harness.register("limited@example.com", PASSWORD)
    wrong = _login("limited@example.com", "not the password")
    async with without_lanes(harness) as flask:
        answers = []
        for address in ("198.51.100.1", "198.51.100.2"):
            for _ in range(3):
                lane, view = await both_answers(harness, flask, wrong, {"X-Forwarded-For": address})
                answers.append((lane, view))
    # Each address: its lane login and view login share one bucket of 2 failures.
    for lane, view in answers:
        assert lane[0] in (401, 429) and view[0] in (401, 429)
    statuses = [(lane[0], view[0]) for lane, view in answers]
    assert statuses == [(401, 401), (429, 429), (429, 429)] * 2
    lane, view = answers[-1]
    assert lane == view
    assert dict(lane[1])[b"retry-after"]


@pytest.mark.parametrize(
    "down",
    [
        {"redis_url": CLOSED_REDIS, "redis_timeout": 0.5},
        {"database_url": CLOSED_POSTGRES, "db_pool_timeout": 0.5},
    ],
    ids=["redis-down", "postgres-down"],
)
async def test_lane_and_view_answer_a_store_down_alike(
    settings: Settings, down: dict[str, object]
) -> None:
    broken = replace(settings, trusted_proxy_hops=1, rate_limits_enabled=True, **down)  # type: ignore[arg-type]
    asgi, harness = await start_harness(broken)
    try:
        async with harness.client, without_lanes(harness) as flask:
            lane, view = await both_answers(harness, flask, _login("down@example.com"))
    finally:
        await asgi.runtime.stop()
    assert lane == view
    # Redis down: the view's answer, whatever it is (the limits' own tests say which).
    if "database_url" in down:
        assert lane[0] == 503


LEFT: dict[str, tuple[bytes, list[tuple[str, str]]]] = {
    "cookie transport": (json.dumps(_login("left@example.com", transport="cookie")).encode(), []),
    "a Cookie header": (json.dumps(_login("left@example.com")).encode(), [("Cookie", "a=b")]),
    "malformed JSON": (b'{"email": "left@example.com",', []),
    "duplicate members": (b'{"email": "a@example.com", "email": "left@example.com"}', []),
    "NaN": (b'{"email": "left@example.com", "password": NaN}', []),
    "not an object": (b'["left@example.com"]', []),
    "invalid email": (json.dumps(_login("not an address")).encode(), []),
    "no password": (json.dumps({"email": "left@example.com"}).encode(), []),
    "a number for a password": (b'{"email": "left@example.com", "password": 12345678}', []),
    "text/plain": (
        json.dumps(_login("left@example.com")).encode(),
        [("Content-Type", "text/plain")],
    ),
    "two content types": (
        json.dumps(_login("left@example.com")).encode(),
        [("Content-Type", "application/json")],
    ),
    "no body": (b"", []),
    "an upgrade": (
        json.dumps(_login("left@example.com")).encode(),
        [("Connection", "Upgrade"), ("Upgrade", "websocket")],
    ),
    "not UTF-8": (b'{"email": "\xff"}', []),
}


@pytest.mark.parametrize("case", LEFT)
async def test_logins_the_lane_leaves_reach_the_view(
    make_harness: HarnessFactory, case: str
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    await harness.register("left@example.com", PASSWORD)
    content, extra = LEFT[case]
    headers = [("Content-Type", "application/json"), *extra]
    if case == "text/plain":
        headers = extra
    scope = {
        "path": "/auth/login",
        "method": "POST",
        "client": ("127.0.0.1", 4000),
        "headers": [(n.lower().encode(), v.encode()) for n, v in headers],
    }
    assert LoginLane(harness.runtime).take(scope, content) is None
    async with without_lanes(harness) as flask:
        lane = await _answer(harness.client, content, headers)
        view = await _answer(flask, content, headers)
    assert lane == view
    assert lane[0] < 500, lane


async def test_the_lane_records_the_views_origin(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    await harness.register("origin@example.com", PASSWORD)
    headers = {
        "X-Forwarded-For": "192.0.2.1, 2001:db8::7",
        "User-Agent": "phone/1.0 (lane)",
        "X-Request-ID": "origin-request-1",
    }
    with caplog.at_level(logging.INFO, logger="api.audit"):
        response = await harness.client.post(
            "/auth/login", json=_login("origin@example.com"), headers=headers
        )
    assert response.status_code == 200, response.text
    tokens = response.json()
    listed = await harness.client.get("/auth/sessions", headers=bearer(tokens["access_token"]))
    (session,) = listed.json()["sessions"]
    assert (session["ip"], session["user_agent"]) == ("2001:db8::7", "phone/1.0 (lane)")
    assert harness.bind is not None
    event = (
        await harness.bind.execute(
            select(AuditEvent.ip, AuditEvent.user_agent, AuditEvent.user_id).where(
                AuditEvent.type == "login.succeeded",
                AuditEvent.session_id == uuid.UUID(tokens["session_id"]),
            )
        )
    ).one()
    assert (event.ip, event.user_agent) == ("2001:db8::7", "phone/1.0 (lane)")
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login.")]
    assert logged == [
        f"login.succeeded user={event.user_id} session={tokens['session_id']} "
        "request=origin-request-1"
    ]
