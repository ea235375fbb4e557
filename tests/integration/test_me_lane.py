"""GET /me answered by the lane (api.me.lane) and by the Flask view: the same requests
sent through the bridge with its lanes and through one without, on one worker runtime,
get the same status, the same headers in the same order and the same bytes, whatever
the user (odd addresses, roles, second factor, verification) and whatever goes wrong
(bad, expired, revoked or refresh tokens, a disabled or deleted user, Redis or Postgres
down). A proxy's X-Request-ID is trusted, so both answers name the same request."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert

from api.config.settings import Settings
from api.security.keys import KeySet
from api.security.tokens import TokenIssuer
from db.models import TotpFactor, User
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    bearer,
    start_harness,
    without_lanes,
)
from tests.integration.test_unavailable import CLOSED_POSTGRES, CLOSED_REDIS

APP = "http://app.test:5173"
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def both_answers(
    harness: Harness, flask: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> tuple[Answer, Answer]:
    """The lane's answer and Flask's to the same request, named by the same request id."""
    answers = []
    for client in (harness.client, flask):
        sent = {**headers, "X-Request-ID": f"same-{uuid.uuid4().hex[:8]}"}
        answers.append(await _answer(client, method, path, sent, sent["X-Request-ID"]))
    return answers[0], answers[1]


async def _answer(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str] | httpx.Headers,
    request_id: str,
) -> Answer:
    response = await client.request(method, path, headers=headers)
    # The ids differ per request by design: each is put back as the one name, "ID".
    raw = [
        (name, b"ID" if name == b"x-request-id" else value) for name, value in response.headers.raw
    ]
    assert response.headers["x-request-id"] == request_id
    return response.status_code, raw, response.content.replace(request_id.encode(), b"ID")


def issue(settings: Settings, user_id: uuid.UUID, role: str = "user", **extra: object) -> str:
    """An access token of a new session of `user_id`, as a login would issue it."""
    issuer = TokenIssuer(settings, KeySet.from_settings(settings))
    tokens = issuer.issue(
        user_id=user_id,
        role=role,
        session_id=uuid.uuid4(),
        fresh=True,
        **extra,  # type: ignore[arg-type]
    )
    return tokens.access_token


async def add_user(
    harness: Harness,
    email: str,
    *,
    role: str = "user",
    verified: bool = False,
    second_factor: bool = False,
    created_at: datetime | None = None,
    disabled: bool = False,
) -> uuid.UUID:
    """A user row written straight into the test's transaction (addresses registration
    would not take included)."""
    assert harness.bind is not None
    user_id = uuid.uuid4()
    values: dict[str, object] = {
        "id": user_id,
        "email": email,
        "email_normalised": f"{user_id}@example.com",
        "password_hash": "not a hash",
        "role": role,
        "disabled": disabled,
        "email_verified_at": datetime.now(UTC) if verified else None,
    }
    if created_at is not None:
        values["created_at"] = created_at
    await harness.bind.execute(insert(User).values(**values))
    if second_factor:
        await harness.bind.execute(
            insert(TotpFactor).values(
                user_id=user_id, secret_encrypted="x", confirmed_at=datetime.now(UTC)
            )
        )
    return user_id


ODD_USERS: list[tuple[str, dict[str, object]]] = [
    ("plain@example.com", {}),
    ('quote"and\\backslash@example.com', {}),
    ("ünïcødé.名前@exämple.com", {"verified": True}),
    ("emoji😀\u2028sep\x7fdel@example.com", {}),
    ("control\x01\n\t@example.com", {"second_factor": True}),
    ("admin@example.com", {"role": "admin", "verified": True, "second_factor": True}),
    (
        "whole-second@example.com",
        {"created_at": datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC)},
    ),
    (
        "micro@example.com",
        {"created_at": datetime(1999, 12, 31, 0, 0, 0, 1, tzinfo=UTC)},
    ),
    # Postgres says disabled, Redis has no mark: the guard asks Redis only, so both answer 200.
    ("disabled-row@example.com", {"disabled": True}),
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_lane_and_view_show_every_kind_of_user_alike(
    make_harness: HarnessFactory, settings: Settings, method: str
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    async with without_lanes(harness) as flask:
        for email, options in ODD_USERS:
            role = str(options.get("role", "user"))
            user_id = await add_user(harness, email, **options)  # type: ignore[arg-type]
            token = issue(settings, user_id, role)
            lane, view = await both_answers(harness, flask, method, "/me", bearer(token))
            assert lane == view, email
            assert lane[0] == 200, lane
            if method == "GET":
                assert json.loads(lane[2])["email"] == email


async def _refused_cases(harness: Harness, settings: Settings) -> dict[str, str]:
    """Tokens the guard or the profile read refuses, by what is wrong with them."""
    user, access = await harness.user_with_token("refused@example.com")
    tokens = await harness.login("refused@example.com")
    _, revoked = await harness.user_with_token("revoked@example.com")
    await harness.client.post("/auth/logout", headers=bearer(revoked))
    disabled_id = await add_user(harness, "disabled@example.com")
    await harness.resources.revocations.mark_disabled(str(disabled_id), 3600)
    expired = issue(settings, uuid.UUID(user["id"]), issued_at=1_000_000_000.0)
    return {
        "garbage": "not.a.token",
        "expired": expired,
        "refresh token": tokens["refresh_token"],
        "revoked (logged out)": revoked,
        "user disabled (Redis mark)": issue(settings, disabled_id),
        "user deleted (no row)": issue(settings, uuid.uuid4()),
        "wrong signature": access[:-4] + ("AAAA" if not access.endswith("AAAA") else "BBBB"),
        "mfa_token (opaque, not a JWT)": uuid.uuid4().hex,
    }


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_lane_and_view_refuse_alike(
    make_harness: HarnessFactory, settings: Settings, method: str
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    cases = await _refused_cases(harness, settings)
    async with without_lanes(harness) as flask:
        for case, token in cases.items():
            lane, view = await both_answers(harness, flask, method, "/me", bearer(token))
            assert lane == view, case
            assert lane[0] == 401, (case, lane)


async def test_lane_and_view_answer_cors_and_query_strings_alike(
    make_harness: HarnessFactory, settings: Settings
) -> None:
    harness = await make_harness(trusted_proxy_hops=1, cors_allowed_origins=(APP,))
    _, token = await harness.user_with_token("cors@example.com")
    async with without_lanes(harness) as flask:
        for headers in (
            {"Origin": APP, **bearer(token)},
            {"Origin": "http://elsewhere.test", **bearer(token)},
            {"Origin": APP, **bearer("not.a.token")},
        ):
            for path in ("/me", "/me?fields=all"):
                lane, view = await both_answers(harness, flask, "GET", path, headers)
                assert lane == view, (path, headers)


async def test_an_admin_without_a_second_factor_sees_me_where_mfa_is_required(
    make_harness: HarnessFactory, settings: Settings
) -> None:
    # MFA_REQUIRED_ROLES guards routes that need a permission; GET /me needs none.
    harness = await make_harness(trusted_proxy_hops=1, mfa_required_roles=("admin",))
    admin_id = await add_user(harness, "mfa-admin@example.com", role="admin", second_factor=True)
    async with without_lanes(harness) as flask:
        lane, view = await both_answers(
            harness, flask, "GET", "/me", bearer(issue(settings, admin_id, "admin"))
        )
    assert lane == view
    assert lane[0] == 200


@pytest.mark.parametrize(
    "down",
    [
        {"redis_url": CLOSED_REDIS, "redis_timeout": 0.5},
        {"database_url": CLOSED_POSTGRES, "db_pool_timeout": 0.5},
    ],
    ids=["redis-down", "postgres-down"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_lane_and_view_answer_a_store_down_alike(
    settings: Settings, down: dict[str, object], method: str
) -> None:
    broken = replace(settings, trusted_proxy_hops=1, **down)  # type: ignore[arg-type]
    asgi, harness = await start_harness(broken)
    try:
        async with harness.client, without_lanes(harness) as flask:
            token = issue(broken, uuid.uuid4())
            lane, view = await both_answers(harness, flask, method, "/me", bearer(token))
            # A token refused by its signature never needs a store.
            bad = await both_answers(harness, flask, method, "/me", bearer("not.a.token"))
    finally:
        await asgi.runtime.stop()
    assert lane == view
    assert lane[0] == 503
    assert bad[0] == bad[1]
    assert bad[0][0] == 401


async def test_requests_the_lane_leaves_are_answered_as_before(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(trusted_proxy_hops=1)
    _, token = await harness.user_with_token("left@example.com")
    two = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")]
    requests: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
        "no token": ("GET", "/me", []),
        "two Authorization headers": ("GET", "/me", two),
        "basic scheme": ("GET", "/me", [("Authorization", "Basic eA==")]),
        "oversized header": ("GET", "/me", [("Authorization", "Bearer " + "x" * 9000)]),
        "trailing slash": ("GET", "/me/", [("Authorization", f"Bearer {token}")]),
        "POST": ("POST", "/me", [("Authorization", f"Bearer {token}")]),
        "OPTIONS": ("OPTIONS", "/me", [("Authorization", f"Bearer {token}")]),
    }
    async with without_lanes(harness) as flask:
        for case, (method, path, headers) in requests.items():
            answers = []
            for client in (harness.client, flask):
                request_id = f"left-{uuid.uuid4().hex[:8]}"
                sent = httpx.Headers([*headers, ("X-Request-ID", request_id)])
                answers.append(await _answer(client, method, path, sent, request_id))
            assert answers[0] == answers[1], case
            assert answers[0][0] < 500, (case, answers[0])


async def test_a_cookie_token_reaches_the_view_and_gets_the_lanes_bytes(harness: Harness) -> None:
    user, token = await harness.user_with_token("cookie-me@example.com")
    by_bearer = await harness.client.get("/me", headers=bearer(token))
    await harness.login("cookie-me@example.com", transport="cookie")
    by_cookie = await harness.client.get("/me")
    assert by_cookie.status_code == by_bearer.status_code == 200
    assert by_cookie.content == by_bearer.content
    assert json.loads(by_bearer.content)["id"] == user["id"]
