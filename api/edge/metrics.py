"""Prometheus metrics, summed over every worker process of the server.

prometheus-client chooses multi-process mode when it is imported, from
PROMETHEUS_MULTIPROC_DIR: the served entry point (api.hypercorn_config, run by
Hypercorn's master before it starts the workers) provides that folder. A process
without one (the in-process test harness, a single-process server) counts in its
own registry. Every label takes its values from a closed set: what a client sends
never becomes a series of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from api.domain.errors import AccountDisabled, DomainError, TokenError
from api.errors import problem_of

logger = logging.getLogger(__name__)

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
SECOND_FACTOR = Counter(
    "auth_api_mfa_total",
    "Second-factor requests by action (verify, enrol, confirm, disable, recovery_codes, "
    "admin_reset) and outcome (success, or the error code).",
    ["action", "outcome"],
)
RATE_LIMIT_HITS = Counter(
    "auth_api_rate_limit_hits_total", "Requests refused by a rate limit.", ["limit"]
)
# Every metric has a label: a label-less one would open its multi-process file at import,
# in Hypercorn's master, before the metrics folder exists.
MAIL_SENT = Counter(
    "auth_api_mail_sent_total",
    "Messages delivered: `smtp`, or `log` (no SMTP_URL: left in the outbox).",
    ["transport"],
)
MAIL_FAILED = Counter(
    "auth_api_mail_failed_total",
    "Failed delivery attempts: `retry` (tried again later) or `gave_up`.",
    ["outcome"],
)
# Set by whichever worker holds the sender's lock; the latest value wins across workers.
OUTBOX_DEPTH = Gauge(
    "auth_api_outbox_depth",
    "Messages in the outbox by state: `waiting` to be sent (due or retrying).",
    ["state"],
    multiprocess_mode="mostrecent",
)

TOKEN_FAILURES = Counter(
    "auth_api_token_failures_total", "Presented tokens the verifier refused, by code.", ["code"]
)
# The codes the verifier answers with: the label's closed set.
TOKEN_FAILURE_CODES = frozenset(
    {
        "token_invalid",
        "token_expired",
        "token_revoked",
        "fresh_token_required",
        "account_disabled",
    }
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def method_label(method: str) -> str:
    """`method` when it is a known one, else "other": what a client sends is not a label."""
    return method if method in METHODS else OTHER_METHOD


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration (`route`: a URL rule or "unmatched")."""
    method = method_label(method)
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, method).observe(seconds)


@contextmanager
def login_outcome() -> Iterator[None]:
    """Count the login in the block by outcome: success, or the error code it ended with."""
    try:
        yield
    except DomainError as error:
        count_refused_login(error)
        raise
    LOGINS.labels("success").inc()


def count_refused_login(error: DomainError) -> None:
    """Count a login refused with `error`, where no `login_outcome` block ran (a lane)."""
    LOGINS.labels(problem_of(error).code).inc()


@contextmanager
def second_factor_outcome(action: str) -> Iterator[None]:
    """Count the second-factor request in the block by outcome (`action`: a fixed name)."""
    try:
        yield
    except DomainError as error:
        SECOND_FACTOR.labels(action, problem_of(error).code).inc()
        raise
    SECOND_FACTOR.labels(action, "success").inc()


@contextmanager
def token_failures() -> Iterator[None]:
    """Count a token refused in the block by its code, and log it at debug (never the token)."""
    try:
        yield
    except (TokenError, AccountDisabled) as error:
        code = problem_of(error).code
        code = code if code in TOKEN_FAILURE_CODES else "other"
        TOKEN_FAILURES.labels(code).inc()
        logger.debug("token refused: %s", code)
        raise


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics, summed, in the Prometheus text format."""
    if values.ValueClass is values.MutexValue:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Let the live-gauge files of a stopped worker go (counters keep their totals)."""
    if values.ValueClass is not values.MutexValue:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
