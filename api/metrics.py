"""Prometheus metrics, summed over every worker process of the server.

prometheus-client decides at import time whether it runs in multi-process mode,
from PROMETHEUS_MULTIPROC_DIR; so this module sets it, before importing the client,
to a directory shared by the workers of one Hypercorn server (named after their
parent process) unless the operator chose one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
if not os.environ.get(_DIR_VARIABLE):
    _shared = Path(tempfile.gettempdir()) / f"auth-api-metrics-{os.getppid()}"
    _shared.mkdir(mode=0o700, exist_ok=True)
    os.environ[_DIR_VARIABLE] = str(_shared)

from prometheus_client import (  # noqa: E402 (must follow the directory choice above)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from api.errors import ApiError  # noqa: E402

REQUESTS = Counter(
    "auth_api_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "auth_api_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LOGINS = Counter("auth_api_logins_total", "Login attempts by outcome.", ["outcome"])
REVOCATIONS = Counter("auth_api_revocations_total", "Revocations by kind.", ["kind"])
RATE_LIMIT_HITS = Counter(
    "auth_api_rate_limit_hits_total", "Requests refused by a rate limit.", ["limit"]
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(seconds)


@contextmanager
def login_outcome() -> Iterator[None]:
    """Count the login in the block by outcome: success, or the error code it ended with."""
    try:
        yield
    except ApiError as error:
        LOGINS.labels(error.code).inc()
        raise
    LOGINS.labels("success").inc()


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics, summed, in the Prometheus text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Let the live-gauge files of a stopped worker go (counters keep their totals)."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
