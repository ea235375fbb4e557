"""Side-by-side benchmark of the API against baselines measured in the same run.

Every case runs on the same Hypercorn configuration (2 workers), driven by wrk
(2 threads, --connections), for --rounds rounds; medians are reported:

  a  GET /healthz of a bare Flask hello-world app (the baseline)
  b  GET /auth/verify                (bearer token: JWT check + one Redis MGET)
  c  GET /me                         (b + one Postgres query)
  d  POST /auth/login, successful    (rate limits off)
  e  POST /auth/login, rate-limited  (429, LOGIN_RATE_LIMIT=1/hour)
  f  raw argon2id verifications/s with the service's parameters on the same cores

and b and d again for each key-pair algorithm of --algorithms ("b RS256", "d RS256", ...),
each on a server signing with a new key of that algorithm (RSA 3072, as `flask --app api
keys generate` makes), against the same a and f.

Targets: b/a >= 1.0, d/f >= 0.85, e/d >= 10, and connections within the pools.
Usage: scripts/bench [--seconds 10] [--rounds 3] [--connections 32] [--json FILE]
                     [--algorithms RS256,ES256,EdDSA]
       scripts/bench --scale [--scale-users 1000000] [--scale-tokens 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import httpx

from api.security.keys import ASYMMETRIC, generate_private_key, private_pem
from api.settings import Settings
from scripts.benchmarks.argon2_rate import verifies_per_second
from scripts.benchmarks.io_counters import ConnectionWatch, Snapshot, snapshot
from scripts.benchmarks.scale import run_scale
from scripts.benchmarks.wrk import WrkResult, run_wrk, start_server, stop_server

APP_NAME = "auth-api-bench"
PASSWORD = "bench passphrase 0123456789"
STATS_FLUSH_WAIT = 11  # Postgres backends publish their counters within 10 s of going idle.


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "DB_APPLICATION_NAME": APP_NAME,
        "RATE_LIMITS_ENABLED": "false",
        **extra,
    }


def register_and_login(base: str, email: str) -> str:
    credentials = {"email": email, "password": PASSWORD}
    httpx.post(f"{base}/auth/register", json=credentials, timeout=30).raise_for_status()
    return log_in(base, email)


def log_in(base: str, email: str) -> str:
    credentials = {"email": email, "password": PASSWORD}
    response = httpx.post(f"{base}/auth/login", json=credentials, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def delete_user(settings: Settings, email: str) -> None:
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
    def __init__(self, args: argparse.Namespace, settings: Settings) -> None:
        self.args = args
        self.settings = settings
        self.port = args.port
        self.base = f"http://127.0.0.1:{args.port}"
        self.results: dict[str, list[WrkResult]] = {}
        self.argon2: list[float] = []
        self.io: dict[str, dict[str, float]] = {}
        self.max_connections = {"postgres": 0, "redis": 0}
        self.email = f"bench-{uuid.uuid4().hex}@example.com"
        self.key_folder = Path(tempfile.mkdtemp(prefix="bench-keys-"))
        self.key_files: dict[str, str] = {}
        for algorithm in args.algorithms:
            path = self.key_folder / f"{algorithm}.pem"
            path.write_bytes(private_pem(generate_private_key(algorithm)))
            self.key_files[algorithm] = str(path)

    def close(self) -> None:
        shutil.rmtree(self.key_folder, ignore_errors=True)

    def wrk(self, case: str, path: str, **options: Any) -> WrkResult:
        common = {"seconds": self.args.seconds, "connections": self.args.connections}
        run_wrk(self.base + path, **{**common, **options, "seconds": 2})  # warm-up
        with ConnectionWatch(self.settings.database_url, self.settings.redis_url, APP_NAME) as w:
            result = run_wrk(self.base + path, **common, **options)
        self.max_connections["postgres"] = max(self.max_connections["postgres"], w.max_postgres)
        self.max_connections["redis"] = max(self.max_connections["redis"], w.max_redis)
        self.results.setdefault(case, []).append(result)
        print(
            f"  {case}  {result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
            f"  p99 {result.p99_ms:7.2f} ms  statuses {result.statuses}"
            f"  socket errors {result.socket_errors}",
            flush=True,
        )
        return result

    def counted(self, case: str, path: str, headers: dict[str, str]) -> None:
        """Run the case once more, counting what it sends to Redis and Postgres per request."""
        before = snapshot(self.settings.database_url, self.settings.redis_url)
        result = run_wrk(
            self.base + path, seconds=3, connections=self.args.connections, headers=headers
        )
        time.sleep(STATS_FLUSH_WAIT)
        after = snapshot(self.settings.database_url, self.settings.redis_url)
        self.io[case] = _per_request(before, after, result.requests)

    def round(self, number: int, token_holder: dict[str, str]) -> None:
        print(f"round {number}", flush=True)
        server = start_server("scripts.benchmarks.hello:app", self.port, _env())
        try:
            self.wrk("a", "/healthz")
        finally:
            stop_server(server)

        server = start_server("api.asgi:app", self.port, _env())
        try:
            if "token" not in token_holder:
                token_holder["token"] = register_and_login(self.base, self.email)
            auth = {"Authorization": f"Bearer {token_holder['token']}"}
            self.wrk("b", "/auth/verify", headers=auth)
            self.wrk("c", "/me", headers=auth)
            login = json.dumps({"email": self.email, "password": PASSWORD})
            self.wrk("d", "/auth/login", body=login, headers={"Content-Type": "application/json"})
            if number == 1:
                self.counted("b", "/auth/verify", auth)
                self.counted("c", "/me", auth)
        finally:
            stop_server(server)

        for algorithm, key_file in self.key_files.items():
            env = _env(JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY_FILE=key_file)
            server = start_server("api.asgi:app", self.port, env)
            try:
                auth = {"Authorization": f"Bearer {log_in(self.base, self.email)}"}
                self.wrk(f"b {algorithm}", "/auth/verify", headers=auth)
                login_body = json.dumps({"email": self.email, "password": PASSWORD})
                headers = {"Content-Type": "application/json"}
                self.wrk(f"d {algorithm}", "/auth/login", body=login_body, headers=headers)
            finally:
                stop_server(server)

        limited = _env(RATE_LIMITS_ENABLED="true", LOGIN_RATE_LIMIT="1/hour")
        server = start_server("api.asgi:app", self.port, limited)
        try:
            login = json.dumps({"email": self.email, "password": PASSWORD})
            self.wrk("e", "/auth/login", body=login, headers={"Content-Type": "application/json"})
        finally:
            stop_server(server)

        rate = verifies_per_second(self.settings, self.args.seconds)
        self.argon2.append(rate)
        print(f"  f  {rate:8.0f} argon2id verifications/s", flush=True)

    def report(self) -> dict[str, Any]:
        median = {
            case: statistics.median(r.requests_per_s for r in runs)
            for case, runs in self.results.items()
        }
        median["f"] = statistics.median(self.argon2)
        ratios = {
            "b/a": median["b"] / median["a"],
            "c/a": median["c"] / median["a"],
            "d/f": median["d"] / median["f"],
            "e/d": median["e"] / median["d"],
        }
        for algorithm in self.args.algorithms:
            ratios[f"b/a {algorithm}"] = median[f"b {algorithm}"] / median["a"]
            ratios[f"d/f {algorithm}"] = median[f"d {algorithm}"] / median["f"]
        targets = {"b/a": 1.0, "d/f": 0.85, "e/d": 10.0}
        caps = {
            "postgres": 2 * self.settings.db_pool_size,
            "redis": 2 * self.settings.redis_pool_size,
        }
        print(
            f"\nmedians of {self.args.rounds} rounds, {self.args.seconds} s each, "
            f"wrk -t2 -c{self.args.connections}, Hypercorn 2 workers"
        )
        print("ratios first:")
        for name, value in ratios.items():
            target = targets.get(name)
            verdict = "" if target is None else (" ok" if value >= target else " MISSED")
            goal = "" if target is None else f"  (target >= {target})"
            print(f"  {name:11} = {value:6.2f}{goal}{verdict}")
        for case, runs in sorted(self.results.items()):
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            print(f"  {case:7}  {median[case]:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        print(f"  f  {median['f']:8.0f} argon2id verifications/s")
        for case, io in self.io.items():
            print(
                f"  per request of {case}: {io['redis_commands']:.2f} Redis commands, "
                f"{io['transactions']:.2f} Postgres transactions, {io['scans']:.2f} table scans"
            )
        print(
            f"  most connections open: Postgres {self.max_connections['postgres']} "
            f"(pools allow {caps['postgres']}), Redis {self.max_connections['redis']} "
            f"(pools allow {caps['redis']})"
        )
        within = all(self.max_connections[k] <= caps[k] for k in caps)
        print(f"  connections within the pools: {'ok' if within else 'MISSED'}")
        return {
            "requests_per_s": median,
            "ratios": ratios,
            "io_per_request": self.io,
            "max_connections": self.max_connections,
            "pool_caps": caps,
        }


def _algorithms(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(chosen) - set(ASYMMETRIC)
    if unknown:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(ASYMMETRIC)}")
    return chosen


def _per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    return {
        "redis_commands": (after.redis_commands - before.redis_commands) / requests,
        "transactions": (after.transactions - before.transactions) / requests,
        "scans": (after.scans - before.scans) / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--algorithms",
        type=_algorithms,
        default=list(ASYMMETRIC),
        help="comma-separated key-pair algorithms to measure b and d under as well (default "
        "RS256,ES256,EdDSA; an empty value: HS256 only)",
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
    args = parser.parse_args()
    settings = replace(Settings.from_env(), db_application_name=APP_NAME)
    if args.scale:
        figures = run_scale(
            settings,
            _env(),
            port=args.port,
            users=args.scale_users,
            tokens=args.scale_tokens,
            ttl=args.scale_ttl,
            seconds=args.seconds,
        )
        print(json.dumps(asdict(figures), indent=2))
        if args.json:
            with open(args.json, "w") as out:
                json.dump(asdict(figures), out, indent=2)
        return
    bench = Bench(args, settings)
    token: dict[str, str] = {}
    try:
        for number in range(1, args.rounds + 1):
            bench.round(number, token)
    finally:
        delete_user(settings, bench.email)
        bench.close()
    figures = bench.report()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
