"""Side-by-side benchmark of the API against baselines measured in the same run.

Every case of the service runs on the same Hypercorn configuration (2 workers), driven by
wrk (2 threads, --connections), for --rounds rounds; medians are reported, each with the
CPU time the server's worker processes spent per request (read from /proc, warm-up
excluded): steadier than req/s on a shared machine. Two other services, 2 workers each,
are measured beside it in every round (issue 21), with access logs off everywhere:

  a  GET /healthz of a bare Flask hello-world app on Hypercorn (the baseline)
  seed-style     GET /me as a first version would write it: sync Flask, Flask-JWT-Extended
                 @jwt_required() (HS256, the service's own tokens and key), a Redis GET of
                 the jti blocklist, the user's row through SQLAlchemy + psycopg; gunicorn
                 2 workers x 8 threads (gthread), a pool of 8 connections a worker
  fastapi-users  GET /users/me of FastAPI-Users (JWT strategy, bearer transport,
                 SQLAlchemy + asyncpg, a pool of DB_POOL_SIZE connections a worker as
                 the service's) on uvicorn 2 workers, on a database of its own
                 (<db>_fastapi_users, created and dropped by the bench), one user
                 registered through its API; installed into .venv-fastapi-users
  b  GET /auth/verify                (bearer token: JWT check + one Redis MGET)
  c  GET /me                         (b + one Postgres query)
  b cached, c cached                 (b and c with REVOCATION_CACHE on: no Redis round
                                      trip once a worker remembers the token's answer)
  d  POST /auth/login, successful    (rate limits off)
  r  POST /auth/refresh              (rate limits off; every request presents the
                                      refresh token the previous answer rotated in)
  e  POST /auth/login, rate-limited  (429, LOGIN_RATE_LIMIT=1/hour: a wrong password,
                                      as the limit counts failures; the first is 401)
  f  raw argon2id verifications/s with the service's parameters on the same cores

With --propagation (issue 21, REVOCATION_CACHE), instead: two hosts of 2 workers each with
the cache on, host B under verify load (wrk); the delay from host A's answer to a
revocation to host B's refusal over --revocations revocations (p50/p99/max), then
--kills kills of B's invalidation channel, each followed at once by a revocation that B
must refuse on its first ask (scripts/benchmarks/propagation.py).

With --login (issue 17: the login under load), only the login's cases, on the current tree:

  d N clients  POST /auth/login, successful, at 16, 64 and 256 connections (limits off):
               goodput (200s/s) apart from 503s, and each worker's share of the CPU;
               each run right after a raw argon2id run (f), its ratio taken to that one
  h N clients  the same load on a server whose "login" is its argon2id check alone, on
               the service's parameters and hashing threads, served by Hypercorn the
               same way (scripts/benchmarks/hash_only.py), right after d N: the most any
               login served so reaches on this host, and d's share of it
  p N clients  the same load on a server whose login is the least one kept in Postgres
               does: one read of the account, the argon2id check, two HS256 tokens, one
               INSERT of the session, on asyncpg's own pool (scripts/benchmarks/
               postgres_floor.py), right after h N: the most a login that reads its
               account and writes its session reaches on this host, and d's share of it
  s            POST /auth/login shed with 503 (HASH_WAIT_BUDGET=0.001, HASH_QUEUE_MAX=1)
  e, f         as above

and, for d, h and p at each client count, the workers' CPU per response split into their
event loops' (the workers' main threads) and their other threads' (the hashing): on a
host the hashing fills, goodput/f is at most f's CPU per check over their sum (Postgres,
wrk and the kernel take some of the cores too).

Targets (issue 21): b/a >= 2.0, c/a >= 0.5, c/seed-style >= 1.0, and b/fastapi-users and
c/fastapi-users > 1.0 in every round (each round's ratios are printed beside the medians);
d/f >= 0.90, e/d >= 10, and connections within the pools;
with --login: goodput/f >= 0.90 at each client count, the workers' CPU within 20 % of
each other (max/min <= 1.2), and CPU per 503 and per 429 under 1/20 of a login's.

With --baseline-tree PATH (another checkout of this repository, e.g. from
`git worktree add /tmp/before <commit>`), every round also serves b, c, d, r and e from
PATH's code (its own Hypercorn, PYTHONPATH=PATH, this venv's interpreter) on a database
of its own (<db>_baseline, recreated and migrated by PATH's Alembic, dropped at the end),
alternating with the current tree case by case, and reports current/baseline per case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import httpx

from api.config.settings import Settings
from api.security.keys import ASYMMETRIC, generate_private_key, private_pem
from scripts.benchmarks import cpu
from scripts.benchmarks.argon2_rate import Argon2Rate, verifies_per_second
from scripts.benchmarks.io_counters import ConnectionWatch, Snapshot, snapshot
from scripts.benchmarks.propagation import run_propagation
from scripts.benchmarks.report import (
    EVERY_ROUND,
    FASTAPI_USERS,
    SEED_STYLE,
    TARGETS,
    TITLES,
    Figures,
    Run,
    current_over_baseline,
    markdown_table,
    medians,
    ratios,
    round_ratios,
    targets_table,
    verdicts,
)
from scripts.benchmarks.rivals import FastApiUsers, check_seed_style, serve_seed_style
from scripts.benchmarks.scale import run_scale
from scripts.benchmarks.trees import Tree, baseline_tree, current_tree, drop_database
from scripts.benchmarks.wrk import (
    THREADS,
    Window,
    WrkResult,
    WrkRun,
    refresh_chain_lua,
    run_wrk,
)
from scripts.hypercorn_server import Server, ServerError, free_port

APP_NAME = "auth-api-bench"
PASSWORD = "bench passphrase 0123456789"
STATS_FLUSH_WAIT = 11  # Postgres backends publish their counters within 10 s of going idle.
WORKERS = 2
WARM_UP_SECONDS = 2
MARGIN = 1  # seconds of each measured run outside the window its CPU time is read in
EXPECTED_STATUS = {
    "a": 200,
    SEED_STYLE: 200,
    FASTAPI_USERS: 200,
    "b": 204,
    "c": 200,
    "d": 200,
    "r": 200,
    "e": 429,
    "s": 503,
    "h": 200,
    "p": 200,
}
# The cases of other servers than the service's trees: one row each, whichever the trees.
MACHINE_CASES = ("a", SEED_STYLE, FASTAPI_USERS)
LOGIN_CLIENTS = (16, 64, 256)
HASH_ONLY_APP = "scripts.benchmarks.hash_only:app"
POSTGRES_FLOOR_APP = "scripts.benchmarks.postgres_floor:app"
# Statuses a case may answer besides its expected one: logins at many clients may be shed
# (503), and the shedding case's few admitted logins succeed.
ALSO_ALLOWED = {"d": {503}, "s": {200}, "e": {401}}
USAGE = """scripts/bench [--seconds 10] [--rounds 3] [--connections 32] [--json FILE]
                     [--baseline-tree PATH] [--port 8766] [--algorithms RS256,ES256,EdDSA]
       scripts/bench --login [--seconds 10] [--rounds 3] [--json FILE]
       scripts/bench --scale [--scale-users 1000000] [--scale-tokens 1000000]
       scripts/bench --propagation [--revocations 200] [--kills 20] [--json FILE]"""


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        # A line per request would fill the log file and tilt the comparison with a
        # baseline tree that has no access log.
        "ACCESS_LOG": "false",
        "DB_APPLICATION_NAME": APP_NAME,
        "RATE_LIMITS_ENABLED": "false",
        **extra,
    }


def register_and_login(base: str, email: str) -> str:
    """Register `email` and return an access token of a new session."""
    credentials = {"email": email, "password": PASSWORD}
    httpx.post(f"{base}/auth/register", json=credentials, timeout=30).raise_for_status()
    return login(base, email)["access_token"]


def login(base: str, email: str) -> dict[str, str]:
    """Log in as a registered bench user: the tokens of a new session."""
    credentials = {"email": email, "password": PASSWORD}
    response = httpx.post(f"{base}/auth/login", json=credentials, timeout=30)
    response.raise_for_status()
    body: dict[str, str] = response.json()
    return body


def refresh_tokens(base: str, email: str, count: int) -> list[str]:
    """Fresh refresh tokens, one session each, for a chained refresh run."""
    with ThreadPoolExecutor(4) as pool:
        sessions = pool.map(lambda _: login(base, email), range(count))
        return [session["refresh_token"] for session in sessions]


def delete_user(settings: Settings, email: str) -> None:
    """Delete the bench's user (its sessions go with it) from the settings' database."""
    import asyncio

    import asyncpg

    from db.emails import normalise_email

    async def delete() -> None:
        conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", "", 1))
        try:
            await conn.execute(
                "DELETE FROM users WHERE email_normalised = $1", normalise_email(email)
            )
        finally:
            await conn.close()

    asyncio.run(delete())


class Bench:
    """The rounds of one run: measures every case on every tree and keeps the runs."""

    def __init__(
        self,
        args: argparse.Namespace,
        settings: Settings,
        trees: list[Tree],
        fastapi_users: FastApiUsers | None = None,
    ) -> None:
        self.args = args
        self.fastapi_users = fastapi_users
        self.settings = settings
        self.trees = trees
        self.hello = trees[-1]  # the current tree serves the hello-world
        self.runs: dict[str, dict[str, list[Run]]] = {tree.name: {} for tree in trees}
        self.machine_runs: dict[str, list[Run]] = {}
        self.argon2: list[Argon2Rate] = []
        # --login: each login case's run beside the raw rate measured just before it.
        self.paired_raw: dict[str, list[float]] = {}
        self.worker_shares: dict[str, list[list[float]]] = {}
        self.io: dict[str, dict[str, dict[str, float]]] = {tree.name: {} for tree in trees}
        self.max_connections = {tree.name: {"postgres": 0, "redis": 0} for tree in trees}
        self.unexpected: list[str] = []
        self.registered: set[str] = set()
        self.key_folder = Path(tempfile.mkdtemp(prefix="bench-keys-"))

    def measure(
        self,
        tree: Tree,
        server: Server,
        case: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        lua: Callable[[], str] = str,
        connections: int | None = None,
    ) -> Run:
        """Warm up, then one measured wrk run, the workers' CPU time sampled within it.

        The CPU is read at the edges of a window inside the run, MARGIN seconds from either
        end, and divided by the responses completed within that window: in steady state the
        requests in flight at one edge cost what those at the other do, whereas around the
        whole run the first would start with an empty server and the last be left half done.
        """

        def drive(seconds: int, script: str, window: Window | None = None) -> WrkRun:
            return WrkRun(
                server.url + path,
                seconds=seconds,
                connections=connections or self.args.connections,
                headers=headers,
                body=body,
                lua=script,
                window=window,
            )

        drive(WARM_UP_SECONDS, lua()).result()
        script = lua()  # made before the CPU is sampled: it may log in
        workers = server.worker_pids()
        if len(workers) != WORKERS:
            raise SystemExit(f"{tree.label}: {len(workers)} workers, expected {WORKERS}")
        if not cpu.wait_idle(server.process.pid, workers):
            print(f"  ({tree.name} {case}: workers still busy 30 s after the warm-up)")
        with ConnectionWatch(tree.database_url, self.settings.redis_url, tree.app_name) as w:
            start = time.monotonic() + MARGIN
            window = Window(start, start + self.args.seconds)
            run = drive(self.args.seconds + 2 * MARGIN, script, window)
            _sleep_until(window.start)
            before = cpu.sample(server.process.pid, workers)
            _sleep_until(window.end)
            after = cpu.sample(server.process.pid, workers)
            result = run.result()
        if not result.window_requests:
            raise SystemExit(
                f"{case} on {tree.label}: no request completed in {self.args.seconds} s "
                f"(statuses {result.statuses}, socket errors {result.socket_errors}); "
                "the machine is too busy for runs this short: give more --seconds"
            )
        measured = Run(result, cpu.per_request(before, after, result.window_requests))
        self.worker_shares.setdefault(case, []).append(cpu.shares(before, after))
        if case in MACHINE_CASES:
            self.machine_runs.setdefault(case, []).append(measured)
        else:
            seen = self.max_connections[tree.name]
            seen["postgres"] = max(seen["postgres"], w.max_postgres)
            seen["redis"] = max(seen["redis"], w.max_redis)
            self.runs[tree.name].setdefault(case, []).append(measured)
        self._print_run(tree, case, measured)
        return measured

    def _print_run(self, tree: Tree, case: str, run: Run) -> None:
        result = run.wrk
        who = "" if case in MACHINE_CASES else f" {tree.name:8}"
        print(
            f"  {case}{who} {result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
            f"  p99 {result.p99_ms:7.2f} ms  worker CPU {run.cpu.worker_ms:6.3f} ms/req"
            f" (event loops {run.cpu.loop_ms:5.3f}, master {run.cpu.master_ms:5.3f})"
            f"  statuses {result.statuses}"
            f"  socket errors {result.socket_errors}",
            flush=True,
        )
        kind = case.split()[0]
        also = ALSO_ALLOWED.get(kind, set()) if "clients" in case or kind in "se" else set()
        allowed = {EXPECTED_STATUS[kind]} | also
        if not set(result.statuses) <= allowed or EXPECTED_STATUS[kind] not in result.statuses:
            note = f"{case} on {tree.label}: statuses {result.statuses}"
            self.unexpected.append(note)
            print(
                f"  UNEXPECTED STATUSES: {note}, all should be {EXPECTED_STATUS[case.split()[0]]}"
            )
        if case in self.worker_shares:
            shares = self.worker_shares[case][-1]
            print(
                f"     goodput {_goodput(result):.1f} 200s/s, shed {_shed(result):.1f} 503s/s, "
                f"worker CPU shares {', '.join(f'{share:.0%}' for share in shares)}",
                flush=True,
            )

    def counted(self, tree: Tree, case: str, path: str, headers: dict[str, str]) -> None:
        """Run the case once more, counting what it sends to Redis and Postgres per request."""
        before = snapshot(tree.database_url, self.settings.redis_url)
        result = run_wrk(
            tree.base + path, seconds=3, connections=self.args.connections, headers=headers
        )
        time.sleep(STATS_FLUSH_WAIT)
        after = snapshot(tree.database_url, self.settings.redis_url)
        self.io[tree.name][case] = _per_request(before, after, result.requests)

    def round(self, number: int) -> None:
        """Every case once, each tree in turn; the first tree alternates between rounds."""
        print(f"round {number}", flush=True)
        with self.hello.serve(WORKERS, app="scripts.benchmarks.hello:app") as server:
            self.measure(self.hello, server, "a", "/healthz")

        order = self.trees if number % 2 else self.trees[::-1]
        servers = self._start(order)
        try:
            tokens = {tree.name: self._access_token(tree) for tree in order}
            auth = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
            for tree in order:
                self.measure(tree, servers[tree.name], "b", "/auth/verify", headers=auth[tree.name])
            for tree in order:
                self.measure(tree, servers[tree.name], "c", "/me", headers=auth[tree.name])
            for tree in order:
                self.measure(tree, servers[tree.name], "d", "/auth/login", **self._login(tree))
            for tree in order:
                chain = self._refresh_chain(tree)
                self.measure(tree, servers[tree.name], "r", "/auth/refresh", lua=chain)
            if number == 1:
                for tree in order:
                    self.counted(tree, "b", "/auth/verify", auth[tree.name])
                    self.counted(tree, "c", "/me", auth[tree.name])
            # Made while the API serves; used by the seed-style app once it has stopped.
            current = self.hello
            token = login(current.base, current.email)["access_token"]
            revoked = login(current.base, current.email)["access_token"]
        finally:
            self._stop(servers)

        self._cached_cases()
        self._rival_cases(number, token, revoked)

        servers = self._start(order, RATE_LIMITS_ENABLED="true", LOGIN_RATE_LIMIT="1/hour")
        try:
            for tree in order:
                self.measure(tree, servers[tree.name], "e", "/auth/login", **self._guess(tree))
        finally:
            self._stop(servers)

        self._key_pair_cases()
        self._argon2_rate()

    def _cached_cases(self) -> None:
        """b and c on the current tree with REVOCATION_CACHE on: a valid token's revocation
        answer remembered by each worker, so no Redis round trip in steady state."""
        tree = self.hello
        servers = self._start([tree], REVOCATION_CACHE="true")
        try:
            auth = {"Authorization": f"Bearer {self._access_token(tree)}"}
            self.measure(tree, servers[tree.name], "b cached", "/auth/verify", headers=auth)
            self.measure(tree, servers[tree.name], "c cached", "/me", headers=auth)
        finally:
            self._stop(servers)

    def _rival_cases(self, number: int, token: str, revoked: str) -> None:
        """The other services' cases, on the current tree's port while the API is stopped:
        the seed-style view with the API's own `token` (checked in round 1 to answer its
        user and to refuse `revoked` once blocklisted), then FastAPI-Users."""
        tree = self.hello
        secret = self.settings.jwt_secret_key or ""
        with serve_seed_style(
            tree.port,
            WORKERS,
            secret=secret,
            database_url=self.settings.database_url,
            redis_url=self.settings.redis_url,
        ) as server:
            if number == 1:
                check_seed_style(server.url, token, revoked, tree.email, self.settings.redis_url)
            bearer = {"Authorization": f"Bearer {token}"}
            self.measure(tree, server, SEED_STYLE, "/me", headers=bearer)
        if self.fastapi_users is None:
            return
        with self.fastapi_users.serve(tree.port, WORKERS) as server:
            bearer = {"Authorization": f"Bearer {self.fastapi_users.access_token(server.url)}"}
            self.measure(tree, server, FASTAPI_USERS, "/users/me", headers=bearer)

    def login_round(self, number: int) -> None:
        """The login's cases of issue 17 on the current tree (--login)."""
        print(f"round {number}", flush=True)
        tree = self.hello
        servers = self._start([tree])
        try:
            if tree.name not in self.registered:
                self.registered.add(tree.name)
                register_and_login(tree.base, tree.email)
            for clients in LOGIN_CLIENTS:
                case = f"d {clients} clients"
                # Measured just before the case it is the ceiling of: the load of a shared
                # machine drifts over a round, and a ratio to a rate of minutes ago drifts
                # with it.
                self.paired_raw.setdefault(case, []).append(self._argon2_rate().per_second)
                self.measure(
                    tree,
                    servers[tree.name],
                    case,
                    "/auth/login",
                    connections=clients,
                    **self._login(tree),
                )
                self._hash_only(tree, clients)
                self._postgres_floor(tree, clients)
        finally:
            self._stop(servers)
        shed = {"HASH_WORKERS": "1", "HASH_WAIT_BUDGET": "0.001", "HASH_QUEUE_MAX": "1"}
        servers = self._start([tree], **shed)
        try:
            self.measure(tree, servers[tree.name], "s", "/auth/login", **self._login(tree))
        finally:
            self._stop(servers)
        servers = self._start([tree], RATE_LIMITS_ENABLED="true", LOGIN_RATE_LIMIT="1/hour")
        try:
            self.measure(tree, servers[tree.name], "e", "/auth/login", **self._guess(tree))
        finally:
            self._stop(servers)

    def _hash_only(self, tree: Tree, clients: int) -> None:
        """Case h: the same load on a server whose login is its argon2id check alone
        (scripts/benchmarks/hash_only.py), on a port of its own while the login's server
        idles: the most any login served by Hypercorn reaches on this host."""
        with tree.serve(WORKERS, app=HASH_ONLY_APP, port=free_port()) as server:
            self.measure(
                tree, server, f"h {clients} clients", "/auth/login",
                connections=clients, **self._login(tree),
            )  # fmt: skip

    def _postgres_floor(self, tree: Tree, clients: int) -> None:
        """Case p: the same load on a server whose login is the least one kept in Postgres
        does (scripts/benchmarks/postgres_floor.py), on a port of its own while the login's
        server idles: the most a login that reads its account and writes its session
        reaches on this host."""
        with tree.serve(WORKERS, app=POSTGRES_FLOOR_APP, port=free_port()) as server:
            self.measure(
                tree, server, f"p {clients} clients", "/auth/login",
                connections=clients, **self._login(tree),
            )  # fmt: skip

    def _argon2_rate(self) -> Argon2Rate:
        rate = verifies_per_second(self.settings, self.args.seconds)
        self.argon2.append(rate)
        print(
            f"  f  {rate.per_second:8.0f} argon2id verifications/s"
            f"  CPU {rate.cpu_ms:6.3f} ms/verification",
            flush=True,
        )
        return rate

    def login_report(self) -> dict[str, Any]:
        """The login figures of --login: goodput against the raw hash rate, CPU shares, the
        cost of refusals; printed as a table, returned for --json."""
        runs = self.runs["current"]
        raw = statistics.median(r.per_second for r in self.argon2)
        # A login's CPU, at least: its argon2id verification (the login cases' own CPU per
        # request mixes in their 503s).
        login_cpu = statistics.median(r.cpu_ms for r in self.argon2)
        rows, cpu_rows = [], []
        figures: dict[str, Any] = {"raw_argon2id_per_s": raw, "login_cpu_ms": login_cpu}
        for clients in LOGIN_CLIENTS:
            case = f"d {clients} clients"
            goodput = statistics.median(_goodput(r.wrk) for r in runs[case])
            ratios = [
                _goodput(r.wrk) / paired
                for r, paired in zip(runs[case], self.paired_raw[case], strict=True)
            ]
            ratio = statistics.median(ratios)
            shed = statistics.median(_shed(r.wrk) for r in runs[case])
            p99 = statistics.median(r.wrk.p99_ms for r in runs[case])
            spread = statistics.median(max(s) / min(s) for s in self.worker_shares[case])
            shares = [statistics.median(s) for s in zip(*self.worker_shares[case], strict=True)]
            # The hash-only server (h) and the Postgres floor (p), run right after the
            # login in the same round.
            ceilings, of_ceiling = self._beside(case, f"h {clients} clients")
            floors, of_floor = self._beside(case, f"p {clients} clients")
            split = self._cpu_split(clients)
            rows.append(
                f"| {clients} | {goodput:.1f} | {ratio:.2f} ({min(ratios):.2f}) | "
                f"{statistics.median(ceilings):.2f} | {statistics.median(of_ceiling):.2f} | "
                f"{statistics.median(floors):.2f} | {statistics.median(of_floor):.2f} | "
                f"{shed:.1f} | {p99:,.0f} | "
                f"{' / '.join(f'{x:.0%}' for x in shares)} | {spread:.2f} |"
            )
            figures[case] = {
                "goodput_per_s": goodput,
                "ratio_to_raw": ratio,
                "ratio_to_raw_per_round": ratios,
                "hash_only_ratio_to_raw": statistics.median(ceilings),
                "hash_only_ratio_to_raw_per_round": ceilings,
                "ratio_to_hash_only": statistics.median(of_ceiling),
                "ratio_to_hash_only_per_round": of_ceiling,
                "postgres_floor_ratio_to_raw": statistics.median(floors),
                "postgres_floor_ratio_to_raw_per_round": floors,
                "ratio_to_postgres_floor": statistics.median(of_floor),
                "ratio_to_postgres_floor_per_round": of_floor,
                "shed_per_s": shed,
                "p99_ms": p99,
                "worker_cpu_shares": shares,
                "worker_cpu_max_over_min": spread,
                "cpu_per_response_ms": split,
            }
            cpu_rows.append(
                f"| {clients} | "
                + " | ".join(
                    f"{split[k]['event_loops']:.1f} + {split[k]['other_threads']:.1f}"
                    for k in "dhp"
                )
                + " |"
            )
        per_503 = statistics.median(_cpu_per_refusal(r, login_cpu, 503) for r in runs["s"])
        per_429 = statistics.median(_cpu_per_refusal(r, login_cpu, 429) for r in runs["e"])
        figures.update(cpu_per_503_ms=per_503, cpu_per_429_ms=per_429)
        print(
            f"\nmedians of {self.args.rounds} rounds, {self.args.seconds} s each, "
            f"wrk -t{THREADS}, Hypercorn {WORKERS} workers; raw argon2id {raw:.1f}/s on "
            f"{os.cpu_count()} cores, {login_cpu:.1f} ms of worker CPU per login"
        )
        print(
            "| clients | logins/s (200) | / raw argon2id, same round (lowest) | "
            "hash-only server / raw | logins / hash-only server | Postgres floor / raw | "
            "logins / Postgres floor | shed 503/s | p99 ms | "
            "worker CPU shares | max/min |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(
            "\nworkers' CPU per response, ms, medians: event loops + other threads (the "
            f"hashing); a raw argon2id check took {login_cpu:.1f} (at 256 clients the "
            "logins' responses include cheap 503s)"
        )
        print("| clients | logins | hash-only server | Postgres floor |")
        print("|---|---|---|---|")
        print("\n".join(cpu_rows))
        print(
            f"CPU per 503: {per_503:.3f} ms ({per_503 / login_cpu:.3f} of a login's), "
            f"per 429: {per_429:.3f} ms ({per_429 / login_cpu:.3f} of a login's); target < 0.05"
        )
        print(f"  statuses: {'all as expected' if not self.unexpected else 'UNEXPECTED'}")
        for note in self.unexpected:
            print(f"    {note}")
        return figures

    def _cpu_split(self, clients: int) -> dict[str, dict[str, float]]:
        """Medians of the workers' CPU per response in the login (d), hash-only (h) and
        Postgres floor (p) runs at `clients`, split into the event loops' (the workers'
        main threads) and the other threads' (the hashing)."""
        runs = self.runs["current"]
        split = {}
        for kind in "dhp":
            measured = runs[f"{kind} {clients} clients"]
            split[kind] = {
                "event_loops": statistics.median(r.cpu.loop_ms for r in measured),
                "other_threads": statistics.median(
                    r.cpu.worker_ms - r.cpu.loop_ms for r in measured
                ),
            }
        return split

    def _beside(self, case: str, other: str) -> tuple[list[float], list[float]]:
        """Per round: the goodput of `other` (a server run right after `case`) over the raw
        rate `case` was paired with, and `case`'s goodput over `other`'s."""
        runs = self.runs["current"]
        to_raw = [
            _goodput(o.wrk) / paired
            for o, paired in zip(runs[other], self.paired_raw[case], strict=True)
        ]
        of_other = [
            _goodput(c.wrk) / _goodput(o.wrk) for c, o in zip(runs[case], runs[other], strict=True)
        ]
        return to_raw, of_other

    def _key_pair_cases(self) -> None:
        """b and d again on the current tree, signing with a new key of each algorithm."""
        tree = self.hello
        for algorithm in self.args.algorithms:
            key_file = self.key_folder / f"{algorithm}.pem"
            if not key_file.exists():
                key_file.write_bytes(private_pem(generate_private_key(algorithm)))
            servers = self._start(
                [tree], JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY_FILE=str(key_file)
            )
            try:
                token = login(tree.base, tree.email)["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                server = servers[tree.name]
                self.measure(tree, server, f"b {algorithm}", "/auth/verify", headers=auth)
                self.measure(tree, server, f"d {algorithm}", "/auth/login", **self._login(tree))
            finally:
                self._stop(servers)

    def _start(self, trees: list[Tree], **extra: str) -> dict[str, Server]:
        servers: dict[str, Server] = {}
        try:
            for tree in trees:
                servers[tree.name] = tree.serve(WORKERS, **extra)
        except BaseException:
            self._stop(servers)
            raise
        return servers

    @staticmethod
    def _stop(servers: dict[str, Server]) -> None:
        for server in servers.values():
            server.stop()

    def _access_token(self, tree: Tree) -> str:
        """An access token of a new session (new each round: they expire)."""
        if tree.name not in self.registered:
            self.registered.add(tree.name)
            return register_and_login(tree.base, tree.email)
        return login(tree.base, tree.email)["access_token"]

    def _login(self, tree: Tree, password: str = PASSWORD) -> dict[str, Any]:
        body = json.dumps({"email": tree.email, "password": password})
        return {"body": body, "headers": {"Content-Type": "application/json"}}

    def _guess(self, tree: Tree) -> dict[str, Any]:
        """A login with a wrong password: what the per-IP limit counts."""
        return self._login(tree, "not the password of this account")

    def _refresh_chain(self, tree: Tree) -> Callable[[], str]:
        """A maker of chained-refresh scripts, each with tokens never presented before."""
        count = self.args.connections + THREADS
        return lambda: refresh_chain_lua(refresh_tokens(tree.base, tree.email, count))

    def report(self) -> dict[str, Any]:
        """Print the medians, the ratios against the targets and the table; the figures."""
        machine = {case: medians(runs) for case, runs in self.machine_runs.items()}
        machine["f"] = Figures(
            requests_per_s=statistics.median(r.per_second for r in self.argon2),
            p50_ms=None,
            p99_ms=None,
            worker_cpu_ms=statistics.median(r.cpu_ms for r in self.argon2),
            master_cpu_ms=None,
        )
        trees = {
            name: {case: medians(runs) for case, runs in sorted(cases.items())}
            for name, cases in self.runs.items()
        }
        tree_ratios = {name: ratios({**machine, **figures}) for name, figures in trees.items()}
        tree_rounds = {name: round_ratios(self._round_rates(name)) for name in trees}
        labels = {tree.name: tree.label for tree in self.trees}
        caps = {
            "postgres": WORKERS * self.settings.db_pool_size,
            "redis": WORKERS * self.settings.redis_pool_size,
        }
        print(
            f"\nmedians of {self.args.rounds} rounds, {self.args.seconds} s each, "
            f"wrk -t{THREADS} -c{self.args.connections}, Hypercorn {WORKERS} workers"
        )
        for tree in self.trees:
            print(f"ratios of {tree.label} ({tree.root}), medians and each round's:")
            print("\n".join(verdicts(tree_ratios[tree.name], tree_rounds[tree.name])))
            refresh = trees[tree.name].get("r")
            if refresh is not None:
                print(
                    f"  refresh: {refresh.requests_per_s:.0f} req/s, "
                    f"{refresh.worker_cpu_ms:.3f} ms worker CPU/request (no target)"
                )
        print()
        print(markdown_table(machine, trees, labels))
        print()
        print(targets_table(tree_ratios["current"], tree_rounds["current"]))
        print()
        for tree in self.trees:
            for case, io in self.io[tree.name].items():
                print(
                    f"  per request of {case} ({tree.name}): {io['redis_commands']:.2f} Redis "
                    f"commands, {io['transactions']:.2f} Postgres transactions, "
                    f"{io['scans']:.2f} table scans"
                )
            seen = self.max_connections[tree.name]
            within = all(seen[k] <= caps[k] for k in caps)
            print(
                f"  most connections open ({tree.name}): Postgres {seen['postgres']} "
                f"(pools allow {caps['postgres']}), Redis {seen['redis']} "
                f"(pools allow {caps['redis']}): {'ok' if within else 'MISSED'}"
            )
        print(f"  statuses: {'all as expected' if not self.unexpected else 'UNEXPECTED'}")
        for note in self.unexpected:
            print(f"    {note}")
        current = trees["current"]
        figures: dict[str, Any] = {
            "command": {
                "seconds": self.args.seconds,
                "rounds": self.args.rounds,
                "connections": self.args.connections,
                "workers": WORKERS,
                "wrk_threads": THREADS,
            },
            "trees": {t.name: {"root": str(t.root), "label": t.label} for t in self.trees},
            "titles": TITLES,
            "requests_per_s": {
                **{case: f.requests_per_s for case, f in machine.items()},
                **{case: f.requests_per_s for case, f in current.items()},
            },
            "ratios": tree_ratios["current"],
            "medians": {
                "machine": {case: asdict(f) for case, f in machine.items()},
                **{
                    name: {case: asdict(f) for case, f in cases.items()}
                    for name, cases in trees.items()
                },
            },
            "ratios_by_tree": tree_ratios,
            "ratios_per_round": tree_rounds["current"],
            "ratios_per_round_by_tree": tree_rounds,
            "targets": dict(TARGETS),
            "targets_in_every_round": sorted(EVERY_ROUND),
            "runs": {
                "machine": {
                    case: [asdict(r) for r in runs] for case, runs in self.machine_runs.items()
                },
                **{
                    name: {case: [asdict(r) for r in runs] for case, runs in cases.items()}
                    for name, cases in self.runs.items()
                },
            },
            "argon2": [asdict(r) for r in self.argon2],
            "io_per_request": self.io["current"],
            "io_per_request_by_tree": self.io,
            "max_connections": self.max_connections["current"],
            "max_connections_by_tree": self.max_connections,
            "pool_caps": caps,
            "unexpected_statuses": self.unexpected,
        }
        if "baseline" in trees:
            figures["current_over_baseline"] = {
                case: current_over_baseline(current[case], trees["baseline"][case])
                for case in current
                if case in trees["baseline"]
            }
        return figures

    def _round_rates(self, tree: str) -> dict[str, list[float]]:
        """Requests per second of every case measured in each round, in round order: the
        other servers', the argon2id rate, and `tree`'s own cases."""
        runs = {**self.machine_runs, **self.runs[tree]}
        rates = {case: [r.wrk.requests_per_s for r in each] for case, each in runs.items()}
        rates["f"] = [rate.per_second for rate in self.argon2]
        return rates


def _goodput(result: WrkResult) -> float:
    """Successful logins per second of a run."""
    return result.requests_per_s * result.statuses.get(200, 0) / max(result.requests, 1)


def _shed(result: WrkResult) -> float:
    """503s per second of a run."""
    return result.requests_per_s * result.statuses.get(503, 0) / max(result.requests, 1)


def _cpu_per_refusal(run: Run, login_cpu_ms: float, refusal: int) -> float:
    """Worker CPU per `refusal` answer of a run, the few password checks it admitted (200
    and 401 answers) taken out at a login's CPU each."""
    statuses = run.wrk.statuses
    total = sum(statuses.values()) or 1
    checked = (statuses.get(200, 0) + statuses.get(401, 0)) / total
    refused = statuses.get(refusal, 0) / total
    return (run.cpu.worker_ms - checked * login_cpu_ms) / max(refused, 1e-9)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    return {
        "redis_commands": (after.redis_commands - before.redis_commands) / requests,
        "transactions": (after.transactions - before.transactions) / requests,
        "scans": (after.scans - before.scans) / requests,
    }


def _algorithms(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(chosen) - set(ASYMMETRIC)
    if unknown:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(ASYMMETRIC)}")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of scripts/bench."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        usage=USAGE,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=10, help="of each measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--port", type=int, default=8766, help="of the servers; a baseline tree uses the next one"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        metavar="PATH",
        help="another checkout of this repository to serve beside this one, case by case",
    )
    parser.add_argument(
        "--algorithms",
        type=_algorithms,
        default=list(ASYMMETRIC),
        help="comma-separated key-pair algorithms to measure b and d under as well, on the "
        "current tree (default RS256,ES256,EdDSA; an empty value: HS256 only)",
    )
    parser.add_argument(
        "--login",
        action="store_true",
        help="instead: only the login's cases (at 16, 64 and 256 clients, shed, limited) "
        "against the raw argon2id rate, with each worker's CPU share",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="instead: seed --scale-users users and revoke --scale-tokens tokens (short TTLs), "
        "then compare login p50 with the 1,000-user figure and Redis memory before and after",
    )
    parser.add_argument("--scale-users", type=int, default=1_000_000)
    parser.add_argument("--scale-tokens", type=int, default=1_000_000)
    parser.add_argument("--scale-ttl", type=int, default=30, help="seconds the revocations last")
    parser.add_argument(
        "--propagation",
        action="store_true",
        help="instead: REVOCATION_CACHE on two hosts, host B under verify load; the delay from "
        "host A's answer to host B's refusal over --revocations revocations (p50/p99/max), "
        "then --kills kills of B's invalidation channel (revocations must stay refused)",
    )
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--kills", type=int, default=20)
    return parser.parse_args(argv)


def main() -> None:
    try:
        run(parse_args())
    except ServerError as error:
        raise SystemExit(str(error)) from None


def run(args: argparse.Namespace) -> None:
    """The benchmark of the command line `args`."""
    settings = replace(Settings.from_env(), db_application_name=APP_NAME)
    if args.propagation:
        figures = run_propagation(
            settings, _env(), port=args.port, revocations=args.revocations, kills=args.kills
        )
        print(json.dumps(asdict(figures), indent=2))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(asdict(figures), out, indent=2)
        return
    if args.scale:
        scale = run_scale(
            settings,
            _env(),
            port=args.port,
            users=args.scale_users,
            tokens=args.scale_tokens,
            ttl=args.scale_ttl,
            seconds=args.seconds,
        )
        print(json.dumps(asdict(scale), indent=2))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(asdict(scale), out, indent=2)
        return
    current = current_tree(args.port, settings.database_url, APP_NAME)
    trees = [current]
    if args.baseline_tree is not None:
        # A name of its own: both trees' servers run side by side, and each tree's
        # connections are counted by name.
        baseline = baseline_tree(
            args.baseline_tree.resolve(),
            args.port + 1,
            settings.database_url,
            APP_NAME + "-baseline",
        )
        trees.insert(0, baseline)
    current.check_imports_own_code()
    if args.login:
        bench = Bench(args, settings, trees)
        try:
            for number in range(1, args.rounds + 1):
                bench.login_round(number)
        finally:
            delete_user(settings, current.email)
        login_figures = bench.login_report()
        if args.json:
            with open(args.json, "w") as out:
                json.dump(login_figures, out, indent=2)
        return
    if settings.jwt_algorithm != "HS256" or not settings.jwt_secret_key:
        raise SystemExit(
            "the seed-style and FastAPI-Users baselines sign with HS256 and JWT_SECRET_KEY, "
            f"as the service must here: unset JWT_ALGORITHM (it is {settings.jwt_algorithm})"
        )
    fastapi_users = FastApiUsers(
        settings.database_url, settings.jwt_secret_key, settings.db_pool_size
    )
    bench = Bench(args, settings, trees, fastapi_users)
    try:
        for number in range(1, args.rounds + 1):
            bench.round(number)
    finally:
        shutil.rmtree(bench.key_folder, ignore_errors=True)
        delete_user(settings, current.email)
        fastapi_users.close()
        if args.baseline_tree is not None:
            drop_database(trees[0].database_url)
    figures = bench.report()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
