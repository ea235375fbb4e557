"""Load-test a running auth API with locust, then print what it measured.

    scripts/loadtest --url http://127.0.0.1:8000 --users 10000 --concurrency 50 \\
        --duration 60s --scenario login --seed --json summary.json

Scenarios (scripts/locustfile.py):
  login    POST /auth/login back to back, as random seeded users (argon2 + Postgres).
  mobile   login -> GET /auth/verify x N (--verify-count) -> POST /auth/refresh
           -> POST /auth/logout, each request named by its route.

--concurrency simulated users run with no pause between requests, each on its own
keep-alive connection, for --duration (locust's live table every few seconds). The
summary that follows gives total requests, throughput, latency p50/p90/p99/max
(locust rounds times above 100 ms to two significant digits) and the failures by
status and problem code. The exit status is 0 whatever the server answered, 1 when
the tool itself failed (bad arguments, unreachable server, locust or seeding broke).

Users: --seed creates <prefix>-0 .. <prefix>-(N-1)@load.example.com straight in the target's
Postgres (DATABASE_URL, any form the app accepts, or --database-url), all with one
argon2id hash made with this environment's ARGON2_* variables: run with the server's
values so logins cost what they cost in production. Remove them afterwards with
`python -m scripts.seed --prefix <prefix> --delete`.

RATE LIMITS: the server allows 30 logins a minute per client IP by default, and the
whole load comes from one IP, so nearly every login would answer 429 rate_limited.
Start the *server* with RATE_LIMITS_ENABLED=false (or raise the limit, e.g.
LOGIN_RATE_LIMIT=100000/minute) for a load test; the summary warns when 429s dominate.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scripts import seed

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "scripts" / "locustfile.py"
SCENARIOS = {"login": "LoginUser", "mobile": "MobileFlowUser"}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
# Locust stops on its own at --duration; this is only the bound on its shutdown.
_SHUTDOWN_GRACE = 60


class ToolError(Exception):
    """The load test itself could not run (as opposed to the server answering errors)."""


@dataclass
class RouteStats:
    route: str
    requests: int
    failures: int
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    avg_ms: float


@dataclass
class ErrorCount:
    status: int
    code: str
    route: str
    count: int


@dataclass
class Summary:
    url: str
    scenario: str
    concurrency: int
    duration: str
    seeded_users: int
    total_requests: int
    total_failures: int
    throughput_rps: float
    latency_ms: dict[str, float]
    routes: list[RouteStats] = field(default_factory=list)
    errors: list[ErrorCount] = field(default_factory=list)
    seconds: int = 0
    goodput_rps: float = 0.0  # 200s (every answer that is not a failure) per second
    shed_rps: float = 0.0  # 503s per second
    limited_rps: float = 0.0  # 429s per second
    hashing_limit_per_s: float | None = None  # argon2id verifications/s on this host
    saturated: bool | None = None


# Checked logins at this share of the hashing limit or more: the server is at its limit.
SATURATED_SHARE = 0.8
HASH_MEASURE_SECONDS = 2.0


def duration_seconds(text: str) -> int:
    """Seconds in a locust duration such as 60s, 90, 2m, 1h30m.

    Raises:
        argparse.ArgumentTypeError: not such a duration, or zero.
    """
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"a duration such as 60s, 2m or 1h30m; got {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError("the duration must be longer than zero")
    return total


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1; got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The documented command line of scripts/loadtest."""
    p = argparse.ArgumentParser(
        prog="scripts/loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server (%(default)s)")
    p.add_argument(
        "--users", type=_positive, default=10_000, help="seeded users to log in as (%(default)s)"
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=50,
        help="simulated clients, one connection each (%(default)s)",
    )
    p.add_argument("--duration", default="60s", help="how long to load, e.g. 60s, 5m (%(default)s)")
    p.add_argument(
        "--spawn-rate",
        type=float,
        default=None,
        help="clients started per second (default: all of them within one second)",
    )
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="login")
    p.add_argument(
        "--verify-count",
        type=int,
        default=5,
        help="GET /auth/verify per login in the mobile scenario (%(default)s)",
    )
    p.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="create the --users users first, skipping existing ones (default: --no-seed)",
    )
    p.add_argument("--prefix", default=seed.DEFAULT_PREFIX, help="email prefix (%(default)s)")
    p.add_argument(
        "--password", default=seed.DEFAULT_PASSWORD, help="seeded users' password (%(default)s)"
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="the target's Postgres, for --seed (default: DATABASE_URL, else the app's default)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the summary as JSON here")
    p.add_argument("--html", type=Path, metavar="FILE", help="write locust's HTML report here")
    p.add_argument(
        "--csv",
        metavar="PREFIX",
        help="keep locust's CSV files as PREFIX_stats.csv, PREFIX_failures.csv, ...",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Seed if asked, run locust headless, print and save the summary; 1 on a tool error."""
    p = parser()
    args = p.parse_args(argv)
    try:
        seconds = duration_seconds(args.duration)
    except argparse.ArgumentTypeError as error:
        p.error(f"argument --duration: {error}")
    try:
        check_reachable(args.url)
        if args.seed:
            run_seed(args)
        limit = hashing_limit()
        print(f"loadtest: this host's hashing limit: {limit:.1f} argon2id verifications/s")
        with tempfile.TemporaryDirectory(prefix="loadtest-") as scratch:
            final_csv = os.path.join(scratch, "final")
            run_locust(args, final_csv, seconds)
            summary = with_outcomes(summarise(args, final_csv), seconds, limit)
            print(render(summary))
            if args.json:
                args.json.write_text(json.dumps(asdict(summary), indent=2) + "\n")
                print(f"loadtest: summary written to {args.json}")
            check_no_exceptions(final_csv)
    except (ToolError, OSError) as error:
        print(f"loadtest: {error}", file=sys.stderr)
        return 1
    return 0


def check_reachable(url: str) -> None:
    """Fail early, with a clear sentence, when nothing serves at `url`.

    Raises:
        ToolError: GET /healthz did not answer.
    """
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=5):  # noqa: S310
            pass
    except urllib.error.HTTPError:
        pass  # it answered; the load test will tell the rest
    except (OSError, ValueError) as error:
        raise ToolError(f"nothing answers at {url} ({error}); start the server first") from None


def run_seed(args: argparse.Namespace) -> None:
    """Create the users the scenario logs in as.

    Raises:
        ToolError: the database is unreachable, unmigrated, or the URL is wrong.
    """
    url = args.database_url or seed.default_database_url()
    print(f"loadtest: seeding {args.users} users {seed.seed_email(args.prefix, 0)} ...", flush=True)
    started = time.perf_counter()
    try:
        asyncio.run(
            seed.seed_users(url, args.users, password=args.password, email_prefix=args.prefix)
        )
    except Exception as error:
        raise ToolError(f"seeding {url.split('@')[-1]} failed: {error}") from None
    print(f"loadtest: seeded in {time.perf_counter() - started:.1f} s", flush=True)


def locust_command(args: argparse.Namespace, final_csv: str) -> list[str]:
    """The headless locust command line for `args`; final stats go to `final_csv`_*.csv."""
    spawn_rate = args.spawn_rate or args.concurrency
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(args.concurrency),
        "-r",
        str(spawn_rate),
        "-t",
        args.duration,
        "--host",
        args.url,
        # HTTP errors are results, not tool failures; exceptions are checked in the CSV.
        "--exit-code-on-error",
        "0",
        "--seed-users",
        str(args.users),
        "--seed-prefix",
        args.prefix,
        "--seed-password",
        args.password,
        "--verify-count",
        str(args.verify_count),
        "--final-csv",
        final_csv,
    ]
    if args.csv:
        command += ["--csv", args.csv]
    if args.html:
        command += ["--html", str(args.html)]
    return [*command, SCENARIOS[args.scenario]]


def run_locust(args: argparse.Namespace, final_csv: str, seconds: int) -> None:
    """Run locust in the foreground (its live table stays on screen), bounded in time.

    Raises:
        ToolError: locust failed, or did not stop in time.
    """
    command = locust_command(args, final_csv)
    print(f"loadtest: {args.scenario} scenario, {args.concurrency} clients, {args.duration}")
    process = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + seconds + _SHUTDOWN_GRACE
    while True:
        try:
            code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            break
        except KeyboardInterrupt:
            continue  # locust got the Ctrl-C too: it stops and writes its stats
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)  # locust's shutdown still writes the stats
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise ToolError(f"locust did not stop within {_SHUTDOWN_GRACE} s of the end") from None
    if code != 0:
        raise ToolError(f"locust exited with status {code} (see its output above)")


def summarise(args: argparse.Namespace, csv_prefix: str) -> Summary:
    """The summary of locust's final CSV files (stats, failures, exceptions).

    Raises:
        ToolError: the files are missing or incomplete.
    """
    stats = _read_csv(f"{csv_prefix}_stats.csv")
    failures = _read_csv(f"{csv_prefix}_failures.csv")
    routes = [_route(row) for row in stats if row["Name"] != "Aggregated"]
    total = next((_route(row) for row in stats if row["Name"] == "Aggregated"), None)
    if total is None:
        raise ToolError(f"{csv_prefix}_stats.csv has no Aggregated row")
    errors = sorted(
        (_error(row) for row in failures), key=lambda e: (-e.count, e.status, e.code, e.route)
    )
    return Summary(
        url=args.url,
        scenario=args.scenario,
        concurrency=args.concurrency,
        duration=args.duration,
        seeded_users=args.users,
        total_requests=total.requests,
        total_failures=total.failures,
        throughput_rps=total.throughput_rps,
        latency_ms={
            "p50": total.p50_ms,
            "p90": total.p90_ms,
            "p99": total.p99_ms,
            "max": total.max_ms,
            "avg": total.avg_ms,
        },
        routes=routes,
        errors=errors,
    )


def hashing_limit(seconds: float = HASH_MEASURE_SECONDS) -> float:
    """argon2id verifications/s on this host's cores, with this environment's ARGON2_*."""
    from scripts.benchmarks.argon2_rate import measure

    return measure(
        memory_kib=int(os.environ.get("ARGON2_MEMORY_KIB", "19456")),
        time_cost=int(os.environ.get("ARGON2_TIME_COST", "2")),
        parallelism=int(os.environ.get("ARGON2_PARALLELISM", "1")),
        seconds=seconds,
    ).per_second


def with_outcomes(summary: Summary, seconds: int, limit: float | None) -> Summary:
    """`summary` with goodput, shed and limited per second, and whether hashing saturated.

    Saturated: the logins that reached a password check (200s and 401s of /auth/login)
    came to SATURATED_SHARE of the hashing limit, or some were shed with 503.
    """
    by_status: dict[int, int] = {}
    login_401 = 0
    for e in summary.errors:
        by_status[e.status] = by_status.get(e.status, 0) + e.count
        if e.status == 401 and "login" in e.route:
            login_401 += e.count
    per_second = 1 / seconds if seconds else 0.0
    login = next((r for r in summary.routes if "login" in r.route), None)
    checked = 0.0 if login is None else (login.requests - login.failures + login_401)
    summary.seconds = seconds
    summary.goodput_rps = (summary.total_requests - summary.total_failures) * per_second
    summary.shed_rps = by_status.get(503, 0) * per_second
    summary.limited_rps = by_status.get(429, 0) * per_second
    summary.hashing_limit_per_s = limit
    if limit is not None and login is not None:
        summary.saturated = (
            checked * per_second >= SATURATED_SHARE * limit or by_status.get(503, 0) > 0
        )
    return summary


def check_no_exceptions(csv_prefix: str) -> None:
    """Make sure the locustfile itself never failed: its numbers would be incomplete.

    Raises:
        ToolError: the locustfile raised exceptions during the run.
    """
    exceptions = _read_csv(f"{csv_prefix}_exceptions.csv")
    if exceptions:
        first = exceptions[0]
        raise ToolError(
            f"the locustfile raised {sum(int(e['Count']) for e in exceptions)} exceptions, "
            f"e.g. {first['Message']}\n{first['Traceback']}"
        )


def _read_csv(path: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as file:
            return list(csv.DictReader(file))
    except OSError as error:
        raise ToolError(f"locust wrote no {path}: {error}") from None


def _number(text: str) -> float:
    return 0.0 if text in ("", "N/A") else float(text)


def _route(row: dict[str, str]) -> RouteStats:
    return RouteStats(
        route=row["Name"],
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        throughput_rps=round(_number(row["Requests/s"]), 1),
        p50_ms=_number(row["50%"]),
        p90_ms=_number(row["90%"]),
        p99_ms=_number(row["99%"]),
        max_ms=round(_number(row["Max Response Time"]), 1),
        avg_ms=round(_number(row["Average Response Time"]), 1),
    )


def _error(row: dict[str, str]) -> ErrorCount:
    # The locustfile names each failure "<status> <code>"; locust keeps the repr of
    # the exception that carried it, e.g. CatchResponseError('401 invalid_credentials').
    text = row["Error"]
    wrapped = re.fullmatch(r"\w+\((['\"])(.*)\1\)", text)
    label = wrapped.group(2) if wrapped else text
    status, _, code = label.partition(" ")
    if not status.isdigit():
        status, code = "0", label
    return ErrorCount(
        status=int(status), code=code, route=row["Name"], count=int(row["Occurrences"])
    )


def render(summary: Summary) -> str:
    """The summary as the text printed at the end of a run."""
    lat = summary.latency_ms
    lines = [
        "",
        f"=== loadtest summary: {summary.scenario} scenario against {summary.url} ===",
        f"clients {summary.concurrency}, duration {summary.duration}, "
        f"seeded users {summary.seeded_users}",
        f"requests     {summary.total_requests} ({summary.total_failures} failed, "
        f"{_percent(summary.total_failures, summary.total_requests)})",
        f"throughput   {summary.throughput_rps:.1f} req/s",
        f"latency ms   p50 {lat['p50']:g}  p90 {lat['p90']:g}  p99 {lat['p99']:g}  "
        f"max {lat['max']:g}  (avg {lat['avg']:g})",
        "",
        f"{'route':<20} {'requests':>9} {'failed':>8} {'req/s':>8} "
        f"{'p50':>6} {'p90':>6} {'p99':>6} {'max':>8}",
    ]
    for r in summary.routes:
        lines.append(
            f"{r.route:<20} {r.requests:>9} {r.failures:>8} {r.throughput_rps:>8.1f} "
            f"{r.p50_ms:>6g} {r.p90_ms:>6g} {r.p99_ms:>6g} {r.max_ms:>8g}"
        )
    lines.append("")
    if summary.errors:
        lines.append("errors by status and problem code:")
        lines.append(f"  {'status':>6}  {'code':<28} {'route':<20} {'count':>8}")
        for e in summary.errors:
            lines.append(f"  {e.status:>6}  {e.code:<28} {e.route:<20} {e.count:>8}")
    else:
        lines.append("errors: none")
    lines.extend(_outcomes(summary))
    lines.extend(_hints(summary))
    return "\n".join(lines)


def _outcomes(summary: Summary) -> list[str]:
    lines = [
        "",
        f"what happened: goodput {summary.goodput_rps:.1f} successful answers (200)/s, "
        f"shed {summary.shed_rps:.1f} (503)/s, limited {summary.limited_rps:.1f} (429)/s",
    ]
    limit = summary.hashing_limit_per_s
    if limit is None:
        return lines
    lines.append(
        f"hashing limit of this host: {limit:.1f} password checks/s (argon2id on every core; "
        "the server's host may differ)"
    )
    if summary.saturated:
        lines.append(
            f"SATURATED: the server was checking passwords as fast as it can. Each login waits "
            f"behind the others, so latency is queueing: about {summary.concurrency} clients "
            f"/ {limit:.0f} checks/s = {summary.concurrency / limit:.2f} s, whatever the "
            "server's speed. Fewer clients give lower latency, not more logins; 503s are "
            "logins shed beyond HASH_WAIT_BUDGET, retried after Retry-After."
        )
    elif summary.saturated is not None:
        lines.append(
            "not saturated: the logins checked stayed below the hashing limit, so the "
            "latency above is the server's own, not queueing for the hashing."
        )
    return lines


def _hints(summary: Summary) -> list[str]:
    by_code: dict[str, int] = {}
    for e in summary.errors:
        by_code[e.code] = by_code.get(e.code, 0) + e.count
    hints = []
    if by_code.get("rate_limited", 0) * 10 > summary.total_requests:
        hints.append(
            "hint: most answers are 429 rate_limited: restart the server with "
            "RATE_LIMITS_ENABLED=false (or LOGIN_RATE_LIMIT=100000/minute)."
        )
    if by_code.get("invalid_credentials", 0) * 10 > summary.total_requests:
        hints.append(
            "hint: many 401 invalid_credentials: are the users seeded (--seed) in the "
            "server's database, with this --prefix and --password?"
        )
    return ["", *hints] if hints else []


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


if __name__ == "__main__":
    sys.exit(main())
