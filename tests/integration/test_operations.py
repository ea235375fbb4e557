"""Operations: the access log, closing /metrics and /openapi.json, and the /docs page.

The access log is written by the ASGI bridge for every answer, lanes included, with the
route template and the client's parsed address; the secrets a client sends (bearer
tokens, cookies, passwords, query strings) are sent here recognisably and looked for
in every line and every attribute of every record.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import Counter
from typing import Any

import pytest

from api.edge.access_log import FIELDS
from tests.integration.conftest import Harness, HarnessFactory, bearer
from tests.integration.problems import INVALID_TOKEN_CHALLENGE, assert_problem

PASSWORD = "access-log-password-" + secrets.token_hex(8)
QUERY_SECRET = "query-secret-" + secrets.token_hex(8)
PROXIED_CLIENT = "203.0.113.77"
ROUNDS = 10


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "api.access"]


def _record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could print of `record`: the line and every attribute."""
    return record.getMessage() + " " + " ".join(repr(value) for value in vars(record).values())


async def _traffic(harness: Harness, email: str) -> tuple[list[str], list[tuple[str, str, int]]]:
    """Requests carrying every kind of secret; the secrets, and (method, route, status) sent."""
    client = harness.client
    forwarded = {"X-Forwarded-For": PROXIED_CLIENT}
    await harness.register(email, PASSWORD)
    tokens = await harness.login(email, PASSWORD)
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    cookie_login = await client.post(
        "/auth/login", json={"email": email, "password": PASSWORD, "transport": "cookie"}
    )
    assert cookie_login.status_code == 200
    cookies = [value for value in client.cookies.values() if len(value) > 16]
    assert cookies, "the cookie login set its cookies"
    sent: list[tuple[str, str, int]] = [
        ("POST", "/auth/register", 201),
        ("POST", "/auth/login", 200),
        ("POST", "/auth/login", 200),
    ]
    requests: list[tuple[str, str, dict[str, Any], str, int]] = [
        ("GET", "/me", {"headers": {**bearer(access), **forwarded}}, "/me", 200),
        ("GET", "/me", {}, "/me", 200),  # the access cookie
        (
            "GET",
            "/auth/verify",
            {"headers": {**bearer(access), **forwarded}},
            "/auth/verify",
            204,
        ),
        (
            "GET",
            f"/healthz?token={QUERY_SECRET}&password={PASSWORD}",
            {"headers": forwarded},
            "/healthz",
            200,
        ),
        ("GET", f"/no/such/{QUERY_SECRET}", {"headers": forwarded}, "unmatched", 404),
        (
            "POST",
            "/auth/login",
            {"json": {"email": email, "password": PASSWORD + "-wrong"}, "headers": forwarded},
            "/auth/login",
            401,
        ),
    ]
    answers = await asyncio.gather(
        *(
            client.request(method, path, **kwargs)
            for _ in range(ROUNDS)
            for method, path, kwargs, _, _ in requests
        )
    )
    for answer, (method, _, _, route, status) in zip(
        answers, [r for _ in range(ROUNDS) for r in requests], strict=True
    ):
        assert answer.status_code == status, (route, answer.text)
        sent.append((method, route, status))
    refreshed = await client.post("/auth/refresh", json={"refresh_token": refresh})
    assert refreshed.status_code == 200, refreshed.text
    sent.append(("POST", "/auth/refresh", 200))
    new = refreshed.json()
    leaked = [PASSWORD, QUERY_SECRET, access, refresh, new["access_token"], *cookies]
    return leaked, sent


async def test_access_log_writes_one_line_per_request_with_its_fields_and_no_secret(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(access_log=True, trusted_proxy_hops=1)
    with caplog.at_level(logging.INFO, logger="api.access"):
        secrets_sent, sent = await _traffic(harness, "access-log@example.com")
    records = _access_records(caplog)
    logged = Counter((r.method, r.route, r.status) for r in records)  # type: ignore[attr-defined]
    print(f"access lines: {len(records)} for {len(sent)} requests; {len(logged)} kinds")
    assert logged == Counter(sent)
    for record in records:
        fields = {name: getattr(record, name) for name in FIELDS}
        assert record.getMessage() == " ".join(f"{k}={v}" for k, v in fields.items())
        assert isinstance(record.duration_ms, float) and record.duration_ms >= 0  # type: ignore[attr-defined]
        assert record.levelno == logging.INFO
    clients = Counter(record.client_ip for record in records)  # type: ignore[attr-defined]
    print(f"client_ip values: {dict(clients)}")
    # Requests through the trusted proxy are logged as its client; the rest as the socket.
    assert set(clients) == {PROXIED_CLIENT, "127.0.0.1"}
    leaks = [
        (record.getMessage(), secret[:12])
        for record in records
        for secret in secrets_sent
        if secret in _record_text(record)
    ]
    print(f"secrets looked for: {len(secrets_sent)} in {len(records)} records; found {len(leaks)}")
    assert leaks == []


async def test_access_log_is_written_whatever_log_level_says(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(access_log=True)
    app_logger = logging.getLogger("api")
    level = app_logger.level
    app_logger.setLevel(logging.WARNING)  # as LOG_LEVEL=WARNING leaves it
    try:
        await harness.client.get("/healthz")
    finally:
        app_logger.setLevel(level)
    records = _access_records(caplog)
    assert [r.getMessage().rsplit(" ", 3)[0] for r in records] == [
        "method=GET route=/healthz status=200"
    ]


async def test_access_log_off_writes_nothing(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(access_log=False)
    with caplog.at_level(logging.DEBUG):
        await harness.client.get("/healthz")
        await harness.client.get("/auth/verify")
    assert _access_records(caplog) == []


async def test_metrics_token_refuses_missing_and_wrong_tokens_and_takes_the_right_one(
    make_harness: HarnessFactory,
) -> None:
    token = secrets.token_urlsafe(32)
    harness = await make_harness(metrics_token=token)
    cases = [
        ({}, 401, "token_missing"),
        ({"Authorization": "Bearer"}, 401, "token_missing"),
        ({"Authorization": "Basic " + token}, 401, "token_missing"),
        (bearer(token + "x"), 401, "token_invalid"),
        (bearer(token[:-1]), 401, "token_invalid"),
        ({"Authorization": ("Bearer é" + token).encode("latin-1")}, 401, "token_invalid"),
        (bearer(token), 200, None),
        ({"Authorization": "bearer  " + token}, 200, None),
    ]
    answers = await asyncio.gather(
        *(
            harness.client.get("/metrics", headers=headers)
            for _ in range(ROUNDS)
            for headers, _, _ in cases
        )
    )
    outcomes: Counter[str] = Counter()
    for answer, (_, status, code) in zip(
        answers, [c for _ in range(ROUNDS) for c in cases], strict=True
    ):
        if code is None:
            assert answer.status_code == status
            assert "auth_api_requests_total" in answer.text
        else:
            assert_problem(answer, status, code)
            challenge = "Bearer" if code == "token_missing" else INVALID_TOKEN_CHALLENGE
            assert answer.headers["WWW-Authenticate"] == challenge
        outcomes[f"{answer.status_code} {code or 'ok'}"] += 1
    print(f"/metrics with METRICS_TOKEN: {dict(outcomes)}")
    assert outcomes == {
        "401 token_missing": 3 * ROUNDS,
        "401 token_invalid": 3 * ROUNDS,
        "200 ok": 2 * ROUNDS,
    }


async def test_metrics_without_a_token_setting_stay_open(harness: Harness) -> None:
    assert (await harness.client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("setting", "path"),
    [("metrics_enabled", "/metrics"), ("openapi_enabled", "/openapi.json")],
)
async def test_a_disabled_operations_route_answers_404(
    make_harness: HarnessFactory, setting: str, path: str
) -> None:
    harness = await make_harness(**{setting: False}, metrics_token=None)
    for headers in ({}, bearer("anything")):
        assert_problem(await harness.client.get(path, headers=headers), 404, "not_found")
    assert (await harness.client.head(path)).status_code == 404


# Attribute values that load something: src="...", href="...", url(...).
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_docs_page_loads_only_its_own_assets_with_a_strict_policy(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(docs_enabled=True)
    page = await harness.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    references = _REFERENCE.findall(page.text)
    print(f"/docs references: {references}")
    assert references and all(r.startswith("/docs/") and not r.startswith("//") for r in references)
    assert "<script>" not in page.text  # no inline script: the policy would block it
    sizes = {}
    for reference in references:
        asset = await harness.client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        sizes[reference] = len(asset.content)
    print(f"assets served locally: {sizes}")
    assert sizes["/docs/swagger-ui-bundle.js"] > 500_000  # Swagger UI itself, not a loader
    init = (await harness.client.get("/docs/init.js")).text
    assert 'url: "/openapi.json"' in init and "validatorUrl: null" in init
    assert "http" not in init
    assert (await harness.client.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    "path", ["/docs/index.html", "/docs/..%2Fpyproject.toml", "/docs/LICENSE", "/docs/x.js"]
)
async def test_docs_serve_no_other_file(make_harness: HarnessFactory, path: str) -> None:
    harness = await make_harness(docs_enabled=True)
    assert (await harness.client.get(path)).status_code == 404


@pytest.mark.parametrize(
    "overrides",
    [{"docs_enabled": False}, {"docs_enabled": True, "openapi_enabled": False}],
)
async def test_docs_answer_404_when_disabled(
    make_harness: HarnessFactory, overrides: dict[str, bool]
) -> None:
    harness = await make_harness(**overrides)
    for path in ("/docs", "/docs/swagger-ui-bundle.js", "/docs/init.js"):
        assert_problem(await harness.client.get(path), 404, "not_found")


async def test_docs_are_off_by_default_outside_development(harness: Harness) -> None:
    assert harness.resources.settings.app_env == "test"
    assert_problem(await harness.client.get("/docs"), 404, "not_found")


async def test_a_problem_names_its_request_as_its_answer_does(harness: Harness) -> None:
    answer = await harness.client.get("/me")
    assert answer.status_code == 401
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
