"""Propagation mode of scripts/bench (REVOCATION_CACHE): how long after host A answers a
revocation does host B refuse the token, with B under verify load?

Two Hypercorn servers ("hosts", 2 workers each, REVOCATION_CACHE=true) on one Postgres and
one Redis; wrk keeps host B busy with GET /auth/verify. For each of --revocations
revocations (logout and logout-all in turn) a fresh token is first answered 204 by B over
PROBES kept-alive connections (so the workers behind them remember it), then revoked
through A; from A's answer on, the probes ask B in turn until each has been refused. The
delay to the first refusal and to the last probe's are reported (p50/p99/max), and any 204
after a probe's refusal is counted (there must be none).

Then --kills times, still under load: B's subscriptions are killed (CLIENT KILL), a token
B remembers is revoked through A at once, and every probe must refuse it on its first ask
(fails closed); the time until both workers subscribe again is reported.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
from redis.asyncio import Redis

from api.config.settings import Settings
from db.emails import normalise_email
from scripts.hypercorn_server import Server

PASSWORD = "propagation passphrase 0123456789"
PROBES = 4
LOAD_CONNECTIONS = 32
DEADLINE = 30.0  # a revocation B never refuses within this fails the run


@dataclass
class PropagationFigures:
    revocations: int
    first_refusal_ms: dict[str, float]
    all_probes_refused_ms: dict[str, float]
    served_after_refusal: int
    # 204s B gave after A's answer, before that probe's refusal (the cache's window).
    served_before_refusal: int
    # Revocations every probe refused on its first ask after A's answer.
    refused_on_first_ask: int
    kills: int
    refused_at_once_after_kill: int
    stale_after_kill: int
    resubscribed_ms: dict[str, float]
    load_requests_per_second: float
    notes: list[str] = field(default_factory=list)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return {
        "p50": round(at(0.50), 2),
        "p99": round(at(0.99), 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Hosts:
    """Host A's client, host B's probes and what B's workers subscribe as."""

    def __init__(self, a: Server, b: Server, b_name: str, email: str) -> None:
        self.a = httpx.Client(base_url=a.url, timeout=30)
        # One connection each, kept alive: each stays with the worker that accepted it.
        self.probes = [httpx.Client(base_url=b.url, timeout=30) for _ in range(PROBES)]
        self.subscriber = f"{b_name}-revocations"
        self.email = email

    def close(self) -> None:
        self.a.close()
        for probe in self.probes:
            probe.close()

    def login(self) -> dict[str, str]:
        answer = self.a.post("/auth/login", json={"email": self.email, "password": PASSWORD})
        answer.raise_for_status()
        body: dict[str, str] = answer.json()
        return body

    def remembered_by_b(self, token: str) -> None:
        for probe in self.probes:
            for _ in range(2):
                code = probe.get("/auth/verify", headers=_bearer(token)).status_code
                if code != 204:
                    raise SystemExit(f"host B answered {code} to a valid token")

    def revoke(self, number: int, token: str) -> None:
        path = "/auth/logout" if number % 2 == 0 else "/auth/logout-all"
        answer = self.a.post(path, headers=_bearer(token))
        if answer.status_code != 204:
            raise SystemExit(f"host A answered {answer.status_code} to {path}")


@dataclass
class Refusals:
    delays_ms: list[float]  # each probe's, from A's answer to its first 401, sorted
    served_before: int
    served_after: int


def _until_refused(hosts: Hosts, token: str, answered: float) -> Refusals:
    """Ask B through every probe in turn until each was refused."""
    refused_at: dict[int, float] = {}
    served_before, served_after = 0, 0
    while len(refused_at) < len(hosts.probes):
        if time.perf_counter() - answered > DEADLINE:
            raise SystemExit(f"host B still served a revoked token after {DEADLINE:g} s")
        for index, probe in enumerate(hosts.probes):
            code = probe.get("/auth/verify", headers=_bearer(token)).status_code
            if code == 401:
                refused_at.setdefault(index, (time.perf_counter() - answered) * 1000)
            elif code == 204 and index in refused_at:
                served_after += 1
            elif code == 204:
                served_before += 1
            else:
                raise SystemExit(f"host B answered {code}")
    return Refusals(sorted(refused_at.values()), served_before, served_after)


async def _subscribers(redis_url: str, name: str) -> list[str]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        return [str(c["id"]) for c in await redis.client_list(_type="pubsub") if c["name"] == name]
    finally:
        await redis.aclose()


async def _kill(redis_url: str, ids: list[str]) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        for client_id in ids:
            await redis.client_kill_filter(_id=client_id, _type="pubsub")
    finally:
        await redis.aclose()


def _subscribed(redis_url: str, name: str, workers: int) -> list[str]:
    deadline = time.monotonic() + DEADLINE
    while True:
        ids = asyncio.run(_subscribers(redis_url, name))
        if len(ids) == workers:
            return ids
        if time.monotonic() > deadline:
            raise SystemExit(f"host B has {len(ids)} subscriptions, not {workers}")
        time.sleep(0.01)


def _load(url: str, token: str, seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk", "-t1", f"-c{LOAD_CONNECTIONS}", f"-d{seconds}s",
            "-H", f"Authorization: Bearer {token}",
            url + "/auth/verify",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _requests_per_second(wrk_output: str) -> float:
    for line in wrk_output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return 0.0


def run_propagation(
    settings: Settings, env: dict[str, str], *, port: int, revocations: int, kills: int
) -> PropagationFigures:
    """Start both hosts, measure, stop them; delete the users it made."""
    run = uuid.uuid4().hex[:8]
    # The load's token is another user's: logout-all must not revoke it.
    email, load_email = f"propagation-{run}@example.com", f"propagation-load-{run}@example.com"
    common = {
        **env,
        "REVOCATION_CACHE": "true",
        # Logins here only make tokens to revoke: cheap hashing keeps the run short.
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
    }
    a_name, b_name = f"{settings.db_application_name}-a", f"{settings.db_application_name}-b"
    with (
        Server({**common, "DB_APPLICATION_NAME": a_name}, workers=2, port=port) as a,
        Server({**common, "DB_APPLICATION_NAME": b_name}, workers=2, port=port + 1) as b,
    ):
        try:
            for address in (email, load_email):
                httpx.post(
                    f"{a.url}/auth/register", json={"email": address, "password": PASSWORD}
                ).raise_for_status()
            hosts = Hosts(a, b, b_name, email)
            try:
                load_token = Hosts(a, b, b_name, load_email).login()["access_token"]
                return _measure(hosts, b, load_token, settings.redis_url, revocations, kills)
            finally:
                hosts.close()
        finally:
            _delete_users(settings, [email, load_email])


def _measure(
    hosts: Hosts, b: Server, load_token: str, redis_url: str, revocations: int, kills: int
) -> PropagationFigures:
    _subscribed(redis_url, hosts.subscriber, 2)
    # Long enough for the whole run; stopped when the measuring is done.
    load = _load(b.url, load_token, seconds=3600)
    first, last, served_after, served_before, at_once = [], [], 0, 0, 0
    stale_after_kill, refused_after_kill = 0, 0
    resubscribed: list[float] = []
    started = time.perf_counter()
    try:
        time.sleep(2)  # wrk connected and B's workers busy
        for number in range(revocations):
            token = hosts.login()["access_token"]
            hosts.remembered_by_b(token)
            hosts.revoke(number, token)
            answered = time.perf_counter()
            refusals = _until_refused(hosts, token, answered)
            first.append(refusals.delays_ms[0])
            last.append(refusals.delays_ms[-1])
            served_after += refusals.served_after
            served_before += refusals.served_before
            at_once += refusals.served_before == 0
            if (number + 1) % 50 == 0:
                print(f"  {number + 1} revocations measured", flush=True)
        for _ in range(kills):
            token = hosts.login()["access_token"]
            hosts.remembered_by_b(token)
            ids = _subscribed(redis_url, hosts.subscriber, 2)
            asyncio.run(_kill(redis_url, ids))
            killed = time.perf_counter()
            hosts.revoke(0, token)
            codes = [
                p.get("/auth/verify", headers=_bearer(token)).status_code for p in hosts.probes
            ]
            stale_after_kill += codes.count(204)
            refused_after_kill += codes.count(401)
            again = _resubscribed(redis_url, hosts.subscriber, ids)
            resubscribed.append((again - killed) * 1000)
    finally:
        load.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        output, _ = load.communicate()
    elapsed = time.perf_counter() - started
    return PropagationFigures(
        revocations=revocations,
        first_refusal_ms=_percentiles(first),
        all_probes_refused_ms=_percentiles(last),
        served_after_refusal=served_after,
        served_before_refusal=served_before,
        refused_on_first_ask=at_once,
        kills=kills,
        refused_at_once_after_kill=refused_after_kill,
        stale_after_kill=stale_after_kill,
        resubscribed_ms=_percentiles(resubscribed),
        load_requests_per_second=_requests_per_second(output),
        notes=[
            f"wrk -t1 -c{LOAD_CONNECTIONS} on host B's /auth/verify for the whole run "
            f"({elapsed:.0f} s)",
            f"{PROBES} kept-alive probe connections to host B, asked in turn: a delay "
            "includes the probe requests' own latency under the load",
        ],
    )


def _resubscribed(redis_url: str, name: str, killed: list[str]) -> float:
    deadline = time.monotonic() + DEADLINE
    while True:
        ids = asyncio.run(_subscribers(redis_url, name))
        if len(ids) == 2 and not set(ids) & set(killed):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise SystemExit("host B's workers never subscribed again")
        time.sleep(0.005)


def _delete_users(settings: Settings, emails: list[str]) -> None:
    async def delete() -> None:
        conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", "", 1))
        try:
            await conn.execute(
                "DELETE FROM users WHERE email_normalised = ANY($1::text[])",
                [normalise_email(email) for email in emails],
            )
        finally:
            await conn.close()

    asyncio.run(delete())
