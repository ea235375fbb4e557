"""Measure the ways DESIGN.md names of running async Flask views on one loop per worker.

  asgi         (shipped) api.asgi:app: Hypercorn's ASGI mode; views run on Hypercorn's loop
  wsgi-thread  Hypercorn's WSGI mode; views run on a dedicated loop thread per worker
  asgi-thread  the shipped ASGI bridge, but views on a dedicated loop thread per worker

All serve the same app with 2 workers; wrk drives GET /me (JWT check, one Redis MGET,
one Postgres query: an async Flask view) and GET /healthz (a sync view: the bridge
alone). Runs alternate between the approaches; medians are compared. Usage:

    scripts/bench-async-bridge [--seconds 10] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid

from api.settings import Settings
from scripts.benchmarks.__main__ import delete_user, register_and_login
from scripts.benchmarks.wrk import WrkResult, run_wrk, start_server, stop_server

APPROACHES = {
    "asgi": "api.asgi:app",
    "wsgi-thread": "scripts.benchmarks.wsgi_loop_thread:app",
    "asgi-thread": "scripts.benchmarks.asgi_loop_thread:app",
}
ROUTES = ("/me", "/healthz")


def run_rounds(
    args: argparse.Namespace, env: dict[str, str], email: str
) -> dict[tuple[str, str], list[WrkResult]]:
    """Every approach on every route, --rounds times, alternating approaches."""
    results: dict[tuple[str, str], list[WrkResult]] = {}
    token = ""
    for round_number in range(1, args.rounds + 1):
        for name, target in APPROACHES.items():
            server = start_server(target, args.port, env)
            try:
                base = f"http://127.0.0.1:{args.port}"
                token = token or register_and_login(base, email)
                headers = {"Authorization": f"Bearer {token}"}
                for route in ROUTES:
                    run_wrk(base + route, seconds=2, connections=args.connections, headers=headers)
                    result = run_wrk(
                        base + route,
                        seconds=args.seconds,
                        connections=args.connections,
                        headers=headers,
                    )
                    results.setdefault((name, route), []).append(result)
                    print(
                        f"round {round_number} {name:12} {route:9} "
                        f"{result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                        f"p99 {result.p99_ms:6.2f} ms  statuses {result.statuses}",
                        flush=True,
                    )
            finally:
                stop_server(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/bench-async-bridge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    env = {**os.environ, "LOG_LEVEL": "WARNING", "RATE_LIMITS_ENABLED": "false"}
    email = f"bench-{uuid.uuid4().hex}@example.com"
    try:
        results = run_rounds(args, env, email)
    finally:
        delete_user(Settings.from_env(), email)

    print(
        f"\nmedians (2 Hypercorn workers, wrk -t2 -c{args.connections}, "
        f"{args.seconds} s x {args.rounds} rounds)"
    )
    median = {
        key: statistics.median(r.requests_per_s for r in runs) for key, runs in results.items()
    }
    for (name, route), runs in results.items():
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        rps = median[(name, route)]
        print(f"  {name:12} {route:9} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    for route in ROUTES:
        for other in ("wsgi-thread", "asgi-thread"):
            ratio = median[("asgi", route)] / median[(other, route)]
            print(f"  ratio asgi / {other} on {route}: {ratio:.2f}")


if __name__ == "__main__":
    main()
