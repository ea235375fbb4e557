"""The access log of a real server started by scripts/run: one line per request, ours only.

scripts/run used to pass `--access-logfile -` to Hypercorn, whose line carries the raw
request line (query string included); the app now writes its own line per request, in
development as in production, from Flask views and lanes alike.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from pathlib import Path

import httpx

from tests.e2e.conftest import Users
from tests.e2e.server import Server

PASSWORD = "e2e-access-log-" + secrets.token_hex(8)
QUERY_SECRET = "query-secret-" + secrets.token_hex(8)
ROUNDS = 10
ACCESS_LINE = re.compile(
    r" INFO api\.access: method=(?P<method>\S+) route=(?P<route>\S+) status=(?P<status>\d+) "
    r"duration_ms=\d+\.\d client_ip=127\.0\.0\.1 request_id=(?:[0-9a-f]{32}|-)$"
)
# Hypercorn's access line: `127.0.0.1:port - - [date] "GET /path HTTP/1.1" 200 ...`.
HYPERCORN_ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD) /\S* HTTP/')


async def _requests(
    server: Server, users: Users
) -> tuple[Counter[tuple[str, str, str]], list[str]]:
    sent: Counter[tuple[str, str, str]] = Counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        email = users.new_email()
        body = {"email": email, "password": PASSWORD}
        assert (await http.post("/auth/register", json=body)).status_code == 201
        login = await http.post("/auth/login", json=body)
        assert login.status_code == 200
        sent.update([("POST", "/auth/register", "201"), ("POST", "/auth/login", "200")])
        tokens = login.json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        cases = [
            ("/auth/verify", auth, "/auth/verify", "204"),  # the verify lane
            ("/me", auth, "/me", "200"),
            (f"/healthz?token={QUERY_SECRET}", {}, "/healthz", "200"),
            ("/docs", {}, "/docs", "200"),  # on by default in development
        ]
        answers = await asyncio.gather(
            *(http.get(path, headers=headers) for _ in range(ROUNDS) for path, headers, *_ in cases)
        )
        for answer, (_, _, route, status) in zip(
            answers, [c for _ in range(ROUNDS) for c in cases], strict=True
        ):
            assert str(answer.status_code) == status, (route, answer.text)
            sent[("GET", route, status)] += 1
    return sent, [PASSWORD, QUERY_SECRET, tokens["access_token"], tokens["refresh_token"]]


async def test_scripts_run_writes_one_access_line_per_request_and_no_secret(
    database_url: str, redis_url: str, users: Users, tmp_path: Path
) -> None:
    env = {
        "APP_ENV": "",
        "JWT_SECRET_KEY": "",
        "ACCESS_LOG": "",
        "DOCS_ENABLED": "",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEV_KEY_FILE": str(tmp_path / "jwt_secret_key"),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "RATE_LIMITS_ENABLED": "false",
    }
    server = Server(env, workers=2, script="scripts/run")
    try:
        sent, leaked = await _requests(server, users)
    finally:
        output = server.stop()
    lines = output.splitlines()
    logged = Counter(
        (m["method"], m["route"], m["status"]) for line in lines if (m := ACCESS_LINE.search(line))
    )
    # The readiness polls of scripts/hypercorn_server.py are requests too.
    polls = logged.pop(("GET", "/healthz", "200"), 0) - sent.pop(("GET", "/healthz", "200"))
    hypercorn_lines = [line for line in lines if HYPERCORN_ACCESS_LINE.search(line)]
    found = [secret[:12] for secret in leaked if secret in output]
    print(
        f"access lines: {sum(logged.values())} for {sum(sent.values())} requests "
        f"(+{polls} readiness polls); Hypercorn access lines: {len(hypercorn_lines)}; "
        f"secrets found: {len(found)} of {len(leaked)}"
    )
    assert logged == sent
    assert polls >= 1
    assert hypercorn_lines == []
    assert found == []
