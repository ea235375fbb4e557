"""Faults under load: the mobile flow runs while Redis, then Postgres, go away and come back.

    scripts/faults --concurrency 16 --outage 5 --phase 5

The script owns everything it breaks: it starts a throwaway redis-server (append-only
file, fsync always, so a restart keeps what was written, as a deployment must), a TCP
proxy in front of Postgres at DATABASE_URL (cutting the proxy is the Postgres outage:
the machine's Postgres is never touched), and a 2-worker server pointed at both. Then,
with --concurrency clients, each running login -> verify x3 -> refresh -> verify ->
logout for a random user of its own and presenting a known revoked token now and then:

    phase | Redis killed for --outage s, restarted | phase | proxy cut for --outage s,
    restored | phase

It checks what the service promises: while a dependency is down the requests that need
it answer 503 service_unavailable with Retry-After; no 5xx without a problem body; no
2xx for a revoked token, ever; each dependency is used again without a restart (the time
to the first success after it came back is reported); and no user, session or revocation
written before or during the run is lost. The report prints the requests, the answers by
status and code, the revoked tokens accepted (must be 0) and the times to recover. Exit
status 0 when every promise held, 1 otherwise, 2 when the set-up failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

from api.config.settings import database_url_from_env
from scripts.hypercorn_server import Server, free_port

PASSWORD = "faults under load, long enough"
VERIFIES_PER_FLOW = 3
REVOKED_TOKEN_SHARE = 0.2


@dataclass
class Options:
    """What to run: sizes and durations in seconds."""

    users: int = 20
    concurrency: int = 16
    phase: float = 5.0
    outage: float = 5.0
    recovery_timeout: float = 30.0
    database_url: str = ""
    workers: int = 2


@dataclass
class Report:
    """What the run saw; `held` says whether every promise held."""

    requests: int = 0
    by_answer: dict[str, int] = field(default_factory=dict)
    revoked_accepted: int = 0
    bare_5xx: int = 0
    unavailable_without_retry_after: int = 0
    transport_errors: int = 0
    redis_recovery_s: float | None = None
    postgres_recovery_s: float | None = None
    users_before: int = 0
    users_after: int = 0
    sessions_lost: int = 0
    revocations_lost: int = 0
    revoked_tokens_checked: int = 0
    revocation_marks_at_outage: int = 0

    @property
    def held(self) -> bool:
        return (
            self.revoked_accepted == 0
            and self.bare_5xx == 0
            and self.unavailable_without_retry_after == 0
            and self.transport_errors == 0
            and self.redis_recovery_s is not None
            and self.postgres_recovery_s is not None
            and self.users_after == self.users_before
            and self.sessions_lost == 0
            and self.revocations_lost == 0
        )

    def lines(self) -> list[str]:
        """The report, one line each."""
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_answer.items()))
        seconds = _seconds
        return [
            f"requests: {self.requests}",
            f"answers: {answers}",
            f"revoked tokens accepted: {self.revoked_accepted} "
            f"(of {self.revoked_tokens_checked} presentations of revoked tokens)",
            f"5xx without a problem body: {self.bare_5xx}",
            f"503 without Retry-After or service_unavailable: "
            f"{self.unavailable_without_retry_after}",
            f"transport errors: {self.transport_errors}",
            f"time to recover: redis {seconds(self.redis_recovery_s)}, "
            f"postgres {seconds(self.postgres_recovery_s)}",
            f"users before/after: {self.users_before}/{self.users_after}; sessions lost: "
            f"{self.sessions_lost}; revocations lost: {self.revocations_lost} "
            f"(of {self.revocation_marks_at_outage} marks in Redis when it was killed)",
            "every promise held" if self.held else "A PROMISE WAS BROKEN",
        ]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


class ThrowawayRedis:
    """A redis-server of the script's own that survives a kill with what it acknowledged."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="faults-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self._process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self._dir),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def kill(self) -> None:
        """Kill it as a crash would (SIGKILL)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


class PostgresProxy:
    """A TCP proxy in front of Postgres; cut() drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._pipes.difference_update((writer, up_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


@dataclass
class Ledger:
    """Everything the load saw, and the facts it must find again afterwards."""

    answers: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    revoked_accepted: int = 0
    revoked_presented: int = 0
    bare_5xx: int = 0
    unavailable_without_retry_after: int = 0
    transport_errors: int = 0
    revoked_access: list[str] = field(default_factory=list)
    revoked_refresh: list[str] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    ended_sessions: set[str] = field(default_factory=set)
    # The first 2xx of a request that needs Redis (verify) or Postgres (login), by when it began.
    first_success_after: dict[str, float] = field(default_factory=dict)
    # Dependency -> (when it came back, set at its first success since).
    watch: dict[str, tuple[float, asyncio.Event]] = field(default_factory=dict)
    # The revocation marks in Redis just before it is killed: all must survive.
    marks_at_outage: set[str] = field(default_factory=set)

    def record(self, response: httpx.Response, began: float, needs: str | None) -> None:
        self.requests += 1
        code = ""
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            with contextlib.suppress(ValueError):
                code = str(response.json().get("code", ""))
        self.answers[f"{response.status_code} {code}".strip()] += 1
        if response.status_code >= 500 and not code:
            self.bare_5xx += 1
        if response.status_code == 503 and (
            code != "service_unavailable" or "Retry-After" not in response.headers
        ):
            self.unavailable_without_retry_after += 1
        watched = self.watch.get(needs or "")
        if watched is not None and response.is_success and began >= watched[0]:
            self.first_success_after[needs or ""] = time.monotonic() - watched[0]
            self.watch.pop(needs or "")[1].set()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Load:
    """--concurrency clients running the mobile flow until stopped."""

    def __init__(self, client: httpx.AsyncClient, emails: list[str], ledger: Ledger) -> None:
        self._client = client
        self._emails = emails
        self._ledger = ledger
        self._stopping = asyncio.Event()
        self._random = random.Random(7)

    async def run(self, concurrency: int) -> None:
        await asyncio.gather(*(self._client_loop() for _ in range(concurrency)))

    def stop(self) -> None:
        self._stopping.set()

    async def _send(self, method: str, path: str, needs: str | None, **kwargs: Any) -> Any:
        began = time.monotonic()
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError:
            self._ledger.transport_errors += 1
            return None
        self._ledger.record(response, began, needs)
        return response

    async def _client_loop(self) -> None:
        while not self._stopping.is_set():
            if self._ledger.revoked_access and self._random.random() < REVOKED_TOKEN_SHARE:
                await self._present_revoked()
            else:
                await self._flow(self._random.choice(self._emails))

    async def present_every_revoked(self) -> None:
        """Present every revoked access token to both routes that take one."""
        for token in self._ledger.revoked_access:
            for path in ("/auth/verify", "/me"):
                response = await self._send("GET", path, None, headers=_bearer(token))
                self._count_revoked(response)

    def _count_revoked(self, response: httpx.Response | None) -> None:
        if response is not None:
            self._ledger.revoked_presented += 1
            if response.is_success:
                self._ledger.revoked_accepted += 1

    async def _present_revoked(self) -> None:
        ledger = self._ledger
        if self._random.random() < 0.5 or not ledger.revoked_refresh:
            token = self._random.choice(ledger.revoked_access)
            path = self._random.choice(("/auth/verify", "/me"))
            response = await self._send("GET", path, None, headers=_bearer(token))
        else:
            token = self._random.choice(ledger.revoked_refresh)
            response = await self._send("POST", "/auth/refresh", None, headers=_bearer(token))
        self._count_revoked(response)

    async def _flow(self, email: str) -> None:
        body = {"email": email, "password": PASSWORD}
        login = await self._send("POST", "/auth/login", "postgres", json=body)
        if login is None or login.status_code != 200:
            return
        tokens = login.json()
        self._ledger.sessions.add(tokens["session_id"])
        for _ in range(VERIFIES_PER_FLOW):
            await self._send(
                "GET", "/auth/verify", "redis", headers=_bearer(tokens["access_token"])
            )
        refreshed = await self._send(
            "POST", "/auth/refresh", None, headers=_bearer(tokens["refresh_token"])
        )
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        if refreshed is not None and refreshed.status_code == 200:
            access, refresh = refreshed.json()["access_token"], refreshed.json()["refresh_token"]
            await self._send("GET", "/auth/verify", "redis", headers=_bearer(access))
        logout = await self._send("POST", "/auth/logout", None, headers=_bearer(access))
        if logout is not None and logout.status_code == 204:
            # Revoked for certain from now on: presented again later, at any moment.
            self._ledger.revoked_access.append(access)
            self._ledger.revoked_refresh.append(refresh)
            self._ledger.ended_sessions.add(tokens["session_id"])


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _server_env(database_url: str, redis_url: str, name: str) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DB_APPLICATION_NAME": name,
        # All load comes from one IP: per-IP limits high, but still counted in Redis, so
        # their fallback to process memory is exercised too.
        "LOGIN_RATE_LIMIT": "1000000/minute",
        "REGISTER_RATE_LIMIT": "1000000/minute",
        "LOGIN_FAILURE_LIMIT": "1000000/minute",
        "ARGON2_MEMORY_KIB": os.environ.get("ARGON2_MEMORY_KIB", "1024"),
        "ARGON2_TIME_COST": os.environ.get("ARGON2_TIME_COST", "1"),
    }


async def _count_users(pg: asyncpg.Connection, pattern: str) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM users WHERE email LIKE $1", pattern))


async def _lost_sessions(pg: asyncpg.Connection, ledger: Ledger) -> int:
    rows = await pg.fetch(
        "SELECT id::text, revoked_at IS NOT NULL AS revoked FROM sessions "
        "WHERE id = ANY($1::uuid[])",
        list(ledger.sessions),
    )
    found = {row["id"]: row["revoked"] for row in rows}
    missing = len(ledger.sessions) - len(found)
    unrevoked = sum(1 for sid in ledger.ended_sessions if not found.get(sid, False))
    return missing + unrevoked


async def _revocation_marks(redis_url: str) -> set[str]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        return {key async for key in redis.scan_iter(match="rv:*", count=1000)}
    finally:
        await redis.aclose()


async def _recovery(ledger: Ledger, needs: str, limit: float) -> float | None:
    """Seconds from the dependency's return (now) to the first success that needed it."""
    recovered = asyncio.Event()
    ledger.watch[needs] = (time.monotonic(), recovered)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            await recovered.wait()
    ledger.watch.pop(needs, None)
    return ledger.first_success_after.get(needs)


@contextlib.contextmanager
def _services(options: Options) -> Iterator[tuple[ThrowawayRedis, str]]:
    redis = ThrowawayRedis()
    try:
        redis.start()
        yield redis, normalise(options.database_url or database_url_from_env())
    finally:
        redis.remove()


def normalise(url: str) -> str:
    """DATABASE_URL as asyncpg wants it, with the app's normalisation."""
    return database_url_from_env({"DATABASE_URL": url})


async def run(options: Options, say: Any = print) -> Report:
    """Run the whole fault sequence and return what it saw."""
    report = Report()
    run_id = uuid.uuid4().hex[:8]
    pattern = f"faults-{run_id}-%@example.com"
    emails = [f"faults-{run_id}-{i}@example.com" for i in range(options.users)]
    with _services(options) as (redis, database_url):
        target = urlsplit(database_url)
        proxy = PostgresProxy(target.hostname or "127.0.0.1", target.port or 5432)
        await proxy.start()
        name = f"auth-api-faults-{run_id}"
        env = _server_env(_via(database_url, proxy.port), redis.url, name)
        limits = httpx.Limits(max_connections=options.concurrency * 2)
        pg = await asyncpg.connect(_plain_dsn(database_url))
        try:
            server = await asyncio.to_thread(Server, env, options.workers, ready_path="/readyz")
            try:
                async with httpx.AsyncClient(
                    base_url=server.url, timeout=30, limits=limits
                ) as client:
                    say(f"server ready; registering {len(emails)} users")
                    await _register_all(client, emails)
                    report.users_before = await _count_users(pg, pattern)
                    ledger = Ledger()
                    await _run_phases(options, client, emails, ledger, redis, proxy, say, report)
                    # Every token revoked during the run is refused at the end, after both
                    # outages.
                    say(f"presenting all {len(ledger.revoked_access)} revoked access tokens again")
                    await Load(client, emails, ledger).present_every_revoked()
                    marks_after = await _revocation_marks(redis.url)
                report.users_after = await _count_users(pg, pattern)
                report.sessions_lost = await _lost_sessions(pg, ledger)
                report.revocations_lost = len(ledger.marks_at_outage - marks_after)
                report.revocation_marks_at_outage = len(ledger.marks_at_outage)
                _fill(report, ledger)
            finally:
                say("stopping the server")
                output = await asyncio.to_thread(server.stop)
        finally:
            await proxy.cut()
            with contextlib.suppress(Exception):
                await pg.execute("DELETE FROM users WHERE email LIKE $1", pattern)
            await pg.close()
        problems = [line for line in output.splitlines() if "Traceback" in line]
        if problems:
            say(f"the server printed {len(problems)} tracebacks")
    return report


def _fill(report: Report, ledger: Ledger) -> None:
    report.requests = ledger.requests
    report.by_answer = dict(ledger.answers)
    report.revoked_accepted = ledger.revoked_accepted
    report.revoked_tokens_checked = ledger.revoked_presented
    report.bare_5xx = ledger.bare_5xx
    report.unavailable_without_retry_after = ledger.unavailable_without_retry_after
    report.transport_errors = ledger.transport_errors


async def _register_all(client: httpx.AsyncClient, emails: list[str]) -> None:
    for email in emails:
        response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
        if response.status_code != 201:
            raise RuntimeError(f"registration failed: {response.status_code} {response.text}")


async def _run_phases(
    options: Options,
    client: httpx.AsyncClient,
    emails: list[str],
    ledger: Ledger,
    redis: ThrowawayRedis,
    proxy: PostgresProxy,
    say: Any,
    report: Report,
) -> None:
    load = Load(client, emails, ledger)
    running = asyncio.create_task(load.run(options.concurrency))
    try:
        await asyncio.sleep(options.phase)
        ledger.marks_at_outage = await _revocation_marks(redis.url)
        say(f"killing Redis for {options.outage:g} s")
        redis.kill()
        await asyncio.sleep(options.outage)
        await asyncio.to_thread(redis.start)
        report.redis_recovery_s = await _recovery(ledger, "redis", options.recovery_timeout)
        say(f"Redis back; first verify answered after {_seconds(report.redis_recovery_s)}")
        await asyncio.sleep(options.phase)
        say(f"cutting Postgres for {options.outage:g} s")
        await proxy.cut()
        await asyncio.sleep(options.outage)
        await proxy.start()
        report.postgres_recovery_s = await _recovery(ledger, "postgres", options.recovery_timeout)
        say(f"Postgres back; first login answered after {_seconds(report.postgres_recovery_s)}")
        await asyncio.sleep(options.phase)
    finally:
        load.stop()
        await running


def _arguments(argv: list[str] | None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(
        prog="scripts/faults", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=Options.users)
    parser.add_argument("--concurrency", type=int, default=Options.concurrency)
    parser.add_argument(
        "--phase", type=float, default=Options.phase, help="seconds of load around each outage"
    )
    parser.add_argument(
        "--outage", type=float, default=Options.outage, help="seconds each dependency is down"
    )
    parser.add_argument("--recovery-timeout", type=float, default=Options.recovery_timeout)
    parser.add_argument("--workers", type=int, default=Options.workers)
    parser.add_argument("--database-url", default="", help="default: DATABASE_URL")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    options = Options(
        users=args.users,
        concurrency=args.concurrency,
        phase=args.phase,
        outage=args.outage,
        recovery_timeout=args.recovery_timeout,
        database_url=args.database_url,
        workers=args.workers,
    )
    return options, args.json


def main(argv: list[str] | None = None) -> int:
    options, json_path = _arguments(argv)
    try:
        report = asyncio.run(run(options))
    except (RuntimeError, OSError, asyncpg.PostgresError) as error:
        print(f"faults: {error}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    if json_path:
        Path(json_path).write_text(json.dumps({**asdict(report), "held": report.held}, indent=2))
    return 0 if report.held else 1


if __name__ == "__main__":
    sys.exit(main())
