"""Locust scenarios for the auth API; `scripts/loadtest` runs them headless.

    locust -f scripts/locustfile.py --host http://127.0.0.1:8000 LoginUser
    locust -f scripts/locustfile.py --host http://127.0.0.1:8000 MobileFlowUser --verify-count 10

Run from the repository root (users are named as scripts/seed.py names them). Every
simulated user logs in as a random one of the seeded users (`--seed-users`,
`--seed-prefix`, `--seed-password`, or LOADTEST_USERS / LOADTEST_PREFIX /
LOADTEST_PASSWORD). Requests are named by route, and a failure is named
"<status> <problem code>" from the problem+json body, so locust's failure table is
the error breakdown by route, status and code. No wait between tasks: each simulated
user is one connection's worth of closed-loop load.
"""

from __future__ import annotations

import csv
import random
from typing import Any

from locust import FastHttpUser, events, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from scripts.seed import DEFAULT_PASSWORD, DEFAULT_PREFIX, seed_email

LOGIN = "POST /auth/login"
VERIFY = "GET /auth/verify"
REFRESH = "POST /auth/refresh"
LOGOUT = "POST /auth/logout"


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("auth API load test")
    group.add_argument(
        "--seed-users",
        type=int,
        env_var="LOADTEST_USERS",
        default=10_000,
        help="how many seeded users to pick from (login as <prefix>-<0..N-1>@load.example.com)",
    )
    group.add_argument(
        "--seed-prefix", env_var="LOADTEST_PREFIX", default=DEFAULT_PREFIX, help="email prefix"
    )
    group.add_argument(
        "--seed-password",
        env_var="LOADTEST_PASSWORD",
        default=DEFAULT_PASSWORD,
        help="the seeded users' password",
    )
    group.add_argument(
        "--verify-count",
        type=int,
        env_var="LOADTEST_VERIFY_COUNT",
        default=5,
        help="GET /auth/verify calls per MobileFlowUser login",
    )
    group.add_argument(
        "--final-csv",
        env_var="LOADTEST_FINAL_CSV",
        default="",
        help="write the final stats, failures and exceptions as PREFIX_*.csv on exit",
    )


@events.quitting.add_listener
def _write_final_csv(environment: Environment, **_kwargs: Any) -> None:
    # locust's own --csv files are rewritten once a second, so they can miss the last
    # second of a run; these are written once, from the final numbers.
    prefix = getattr(environment.parsed_options, "final_csv", "")
    if not prefix:
        return
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("stats", writer.requests_csv),
        ("failures", writer.failures_csv),
        ("exceptions", writer.exceptions_csv),
    ):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as file:
            write(csv.writer(file))


def problem_label(response: Any) -> str:
    """'<status> <code>' of a failed response: the problem+json code, or what went wrong."""
    status = response.status_code
    if not status:  # no HTTP answer at all: connection refused, reset, timeout...
        return f"0 {type(response.error).__name__}"
    try:
        body = response.json()
    except Exception:  # not JSON (a proxy's page, a bare 500, an empty body)
        return f"{status} (no problem+json)"
    code = body.get("code") if isinstance(body, dict) else None
    return f"{status} {code or '(no code)'}"


def _check(response: ResponseContextManager, expected: int) -> bool:
    if response.status_code == expected:
        response.success()
        return True
    response.failure(problem_label(response))
    return False


class _AuthUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.seed_users = max(getattr(options, "seed_users", 10_000), 1)
        self.seed_prefix = getattr(options, "seed_prefix", DEFAULT_PREFIX)
        self.seed_password = getattr(options, "seed_password", DEFAULT_PASSWORD)
        self.verify_count = getattr(options, "verify_count", 5)

    def login(self) -> dict[str, Any] | None:
        """Log in as a random seeded user; the token body, or None when it failed."""
        email = seed_email(self.seed_prefix, random.randrange(self.seed_users))
        body = {"email": email, "password": self.seed_password, "device_name": "locust"}
        with self.client.post("/auth/login", json=body, name=LOGIN, catch_response=True) as r:
            return r.json() if _check(r, 200) else None


class LoginUser(_AuthUser):
    """Password logins back to back: the argon2-bound, Postgres-writing path."""

    @task
    def log_in(self) -> None:
        self.login()


class MobileFlowUser(_AuthUser):
    """A phone's day: log in, verify the token N times, refresh, log out."""

    @task
    def session(self) -> None:
        tokens = self.login()
        if tokens is None:
            return
        access = {"Authorization": f"Bearer {tokens['access_token']}"}
        for _ in range(self.verify_count):
            with self.client.get(
                "/auth/verify", headers=access, name=VERIFY, catch_response=True
            ) as r:
                _check(r, 204)
        refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
        with self.client.post(
            "/auth/refresh", headers=refresh, name=REFRESH, catch_response=True
        ) as r:
            if not _check(r, 200):
                return
            access = {"Authorization": f"Bearer {r.json()['access_token']}"}
        with self.client.post(
            "/auth/logout", headers=access, name=LOGOUT, catch_response=True
        ) as r:
            _check(r, 204)
