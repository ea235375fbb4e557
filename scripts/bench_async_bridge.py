"""Measure the two ways DESIGN.md names of running async Flask views on one loop per worker.

  asgi         (shipped) api.asgi:app: Hypercorn's ASGI mode; views run on Hypercorn's loop
  wsgi-thread  Hypercorn's WSGI mode; views run on a dedicated loop thread per worker

Both serve the same app with 2 workers; wrk drives GET /me (JWT check, one Redis MGET,
one Postgres SELECT) and GET /healthz (a sync view: the bridge alone). Runs alternate
between the approaches and the medians are compared. Usage:

    scripts/bench-async-bridge [--seconds 10] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
APPROACHES = {
    "asgi": "api.asgi:app",
    "wsgi-thread": "scripts.bench.wsgi_loop_thread:app",
    "asgi-thread": "scripts.bench.asgi_loop_thread:app",
}
ROUTES = ("/me", "/healthz")


@dataclass
class Result:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def start_server(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            target,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{target} did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, connections: int, token: str) -> Result:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*", output)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return Result(rps, p50, p99, errors)


def bench_user(base: str) -> str:
    email = f"bench-{uuid.uuid4().hex}@example.com"
    password = "bench passphrase " + uuid.uuid4().hex
    httpx.post(
        f"{base}/auth/register", json={"email": email, "password": password}
    ).raise_for_status()
    response = httpx.post(f"{base}/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    results: dict[tuple[str, str], list[Result]] = {}
    token = ""
    for round_number in range(args.rounds):
        for name, target in APPROACHES.items():
            server = start_server(target, args.port, env)
            try:
                base = f"http://127.0.0.1:{args.port}"
                token = token or bench_user(base)
                for route in ROUTES:
                    run_wrk(base + route, 2, args.connections, token)  # warm-up
                    result = run_wrk(base + route, args.seconds, args.connections, token)
                    results.setdefault((name, route), []).append(result)
                    print(
                        f"round {round_number + 1} {name:12} {route:9} "
                        f"{result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                        f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                        flush=True,
                    )
            finally:
                stop_server(server)

    summary = {}
    print(
        f"\nmedians (2 Hypercorn workers, wrk -t2 -c{args.connections}, "
        f"{args.seconds} s x {args.rounds} rounds)"
    )
    for (name, route), runs in results.items():
        median = statistics.median(r.requests_per_s for r in runs)
        summary[f"{name} {route}"] = median
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        errors = sum(r.errors for r in runs)
        print(
            f"  {name:12} {route:9} {median:8.0f} req/s  p50 {p50:6.2f} ms"
            f"  p99 {p99:6.2f} ms  errors {errors}"
        )
    for route in ROUTES:
        for other in ("wsgi-thread", "asgi-thread"):
            ratio = summary[f"asgi {route}"] / summary[f"{other} {route}"]
            print(f"  ratio asgi / {other} on {route}: {ratio:.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
