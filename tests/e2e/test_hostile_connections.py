"""Hostile clients against the real Hypercorn server: over-size, stalled and ignored bodies
are answered and their connections closed, and no worker keeps a descriptor for them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.raw_http import LAST_CHUNK, Connection, chunk, head
from tests.e2e.server import Server, settings_env

READ_TIMEOUT = 1  # seconds: REQUEST_READ_TIMEOUT of this module's server
MAX_BODY = 64 * 1024
OVER = b"x" * (MAX_BODY // 8)  # eight of these fit; the ninth chunk crosses MAX_BODY


@pytest.fixture(scope="module")
def hostile_server(e2e_settings: Settings) -> Iterator[Server]:
    env = {**settings_env(e2e_settings), "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT)}
    server = Server(env, workers=2)
    yield server
    output = server.stop()
    assert "Error in ASGI Framework" not in output, output
    assert "Traceback" not in output, output


def problem_code(body: bytes) -> str:
    return str(json.loads(body)["code"])


async def oversize_chunked_then_next_request(url: str, path: str, *headers: str) -> str:
    """Send a chunked body of 32 x MAX_BODY/8 bytes and a second request behind it;
    what happened: "413+closed", "413+answered", or what went wrong."""
    conn = await Connection.open(url)
    body = chunk(OVER) * 32 + LAST_CHUNK
    following = head("GET", "/healthz")
    sending = asyncio.create_task(
        conn.send(head("POST", path, "Transfer-Encoding: chunked", *headers) + body + following)
    )
    try:
        first = await conn.response()
        if first.status != 413 or problem_code(first.body) != "payload_too_large":
            return f"first answer {first.status}"
        try:
            second = await conn.response()
        except (asyncio.IncompleteReadError, ConnectionError):
            return "413+closed"
        except TimeoutError:
            return "413+hang"
        return "413+answered" if second.status == 200 else f"second answer {second.status}"
    finally:
        await sending
        await conn.close()


async def test_oversize_chunked_body_gets_413_and_the_next_request_does_not_hang(
    hostile_server: Server,
) -> None:
    outcomes = await asyncio.gather(
        *(
            oversize_chunked_then_next_request(hostile_server.url, path, *extra)
            for path, extra in [("/auth/login", ()), ("/auth/register", ())] * 10
        )
    )
    print(f"oversize chunked: {sorted(set(outcomes))}, {len(outcomes)} connections")
    assert set(outcomes) <= {"413+closed", "413+answered"}, outcomes


async def test_ten_megabyte_upload_gets_its_413_without_the_client_giving_up(
    server: Server,
) -> None:
    # httpx, like most clients, sends the whole body before it reads the answer.
    upload = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post(path, content=upload, headers={"Content-Type": "application/json"})
                for path in ("/auth/register", "/auth/login", "/auth/register")
            )
        )
    statuses = [r.status_code for r in responses]
    print(f"10 MB uploads: statuses {statuses}")
    assert statuses == [413, 413, 413]
    assert {r.json()["code"] for r in responses} == {"payload_too_large"}
    assert {r.headers["connection"] for r in responses} == {"close"}


async def stalled(url: str, kind: str) -> str:
    """Start a request and stall it; what the server did."""
    conn = await Connection.open(url)
    try:
        if kind == "head":
            await conn.send(b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
            return "closed" if await conn.closed_by_server() else "held open"
        if kind == "body":
            await conn.send(head("POST", "/auth/login", "Content-Length: 100") + b"{}")
        else:  # a trickle: a byte at a time, each well inside Hypercorn's per-read timeout
            await conn.send(head("POST", "/auth/login", "Content-Length: 100"))
            trickle = asyncio.create_task(_trickle(conn, 100, READ_TIMEOUT / 4))
        try:
            answer = await conn.response()
        except (asyncio.IncompleteReadError, ConnectionError):
            return "closed"
        except TimeoutError:
            return "held open"
        if kind == "trickle":
            trickle.cancel()
        code = problem_code(answer.body)
        closed = await conn.closed_by_server()
        return f"{answer.status} {code}+{'closed' if closed else 'held open'}"
    finally:
        await conn.close()


async def _trickle(conn: Connection, count: int, pause: float) -> None:
    for _ in range(count):
        if not await conn.send(b" "):
            return
        await asyncio.sleep(pause)


async def test_stalled_head_and_body_are_cut_off_after_the_read_timeout(
    hostile_server: Server,
) -> None:
    kinds = ["head", "body", "trickle"] * 5
    outcomes = await asyncio.gather(*(stalled(hostile_server.url, kind) for kind in kinds))
    by_kind = {
        kind: sorted(o for k, o in zip(kinds, outcomes, strict=True) if k == kind)
        for kind in set(kinds)
    }
    print(f"stalled requests: {by_kind}")
    assert set(by_kind["head"]) == {"closed"}
    # A silent body: the bridge's 408 or Hypercorn's read timeout, whichever comes first.
    assert set(by_kind["body"]) <= {"408 request_timeout+closed", "closed"}
    # A trickle keeps Hypercorn's per-read timeout away: the bridge's deadline ends it.
    assert set(by_kind["trickle"]) == {"408 request_timeout+closed"}


async def test_verify_lane_consumes_a_body_and_refuses_an_oversize_one(
    hostile_server: Server, users: Users
) -> None:
    async with httpx.AsyncClient(base_url=hostile_server.url, timeout=30) as http:
        email = await users.register(http)
        token = (await users.login(http, email))["access_token"]
    auth = f"Authorization: Bearer {token}"
    small, oversize = [], []
    for _ in range(10):
        conn = await Connection.open(hostile_server.url)
        try:
            await conn.send(
                head("GET", "/auth/verify", auth, "Content-Length: 17") + b'{"ignored": true}'
            )
            first = await conn.response()
            await conn.send(head("GET", "/auth/verify", auth))
            second = await conn.response()
            small.append((first.status, second.status))
        finally:
            await conn.close()
    oversize = await asyncio.gather(
        *(
            oversize_chunked_then_next_request(hostile_server.url, "/auth/verify", auth)
            for _ in range(10)
        )
    )
    print(f"verify with a small body: {sorted(set(small))}; oversize: {sorted(set(oversize))}")
    assert set(small) == {(204, 204)}
    assert set(oversize) <= {"413+closed", "413+answered"}, oversize


def descriptors(pids: list[int]) -> dict[int, int]:
    return {pid: len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in pids}


async def hostile(url: str, kind: str) -> None:
    """One hostile connection, hung up by the client before the server is done with it."""
    conn = await Connection.open(url)
    try:
        if kind == "chunked":
            await conn.send(
                head("POST", "/auth/login", "Transfer-Encoding: chunked") + chunk(OVER) * 40
            )
            await conn.response()
        elif kind == "declared":
            await conn.send(head("POST", "/auth/register", "Content-Length: 10485760") + OVER)
            await conn.response()
        elif kind == "verify":
            await conn.send(
                head(
                    "GET",
                    "/auth/verify",
                    "Authorization: Bearer a.b.c",
                    "Transfer-Encoding: chunked",
                )
                + chunk(OVER) * 40
            )
            await conn.response()
        elif kind == "stalled body":
            await conn.send(head("POST", "/auth/login", "Content-Length: 100") + b"{}")
            await asyncio.sleep(READ_TIMEOUT / 2)
        else:
            await conn.send(b"GET /healthz HTTP/1.1\r\nHost:")
            await asyncio.sleep(READ_TIMEOUT / 2)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        pass
    finally:
        await conn.close()


async def test_worker_descriptors_return_to_baseline_after_hostile_connections(
    hostile_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=hostile_server.url, timeout=30) as http:
        for _ in range(4):
            assert (await http.get("/healthz")).status_code == 200
    pids = hostile_server.worker_pids()
    assert len(pids) == 2
    baseline = descriptors(pids)
    kinds = ["chunked", "declared", "verify", "stalled body", "stalled head"] * 12
    await asyncio.gather(*(hostile(hostile_server.url, kind) for kind in kinds))
    during = descriptors(pids)
    deadline = time.monotonic() + 10 * READ_TIMEOUT + 20
    after = descriptors(pids)
    while any(after[pid] > baseline[pid] for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        after = descriptors(pids)
    print(
        f"worker descriptors for {len(kinds)} hostile connections: "
        f"before {baseline}, right after {during}, settled {after}"
    )
    assert all(after[pid] <= baseline[pid] for pid in pids), (baseline, after)
